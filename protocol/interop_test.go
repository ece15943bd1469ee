package protocol_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestInteropJavaScript verifies the golden records and webhook signatures
// with independent implementations in another language (jose and the
// Standard Webhooks library, run by Node.js): see testdata/interop. It needs
// node and the packages installed by `npm ci` in that directory; .ci/run
// installs them and sets SPARR_REQUIRE_INTEROP so that CI never skips it.
func TestInteropJavaScript(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short")
	}
	dir := filepath.Join("testdata", "interop")
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join(dir, "node_modules", "jose"))
	}
	if err != nil {
		msg := "needs Node.js and (cd protocol/testdata/interop && npm ci): " + err.Error()
		if os.Getenv("SPARR_REQUIRE_INTEROP") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	cmd := exec.Command(node, "verify.mjs")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("independent verification failed: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
