package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sparrRun(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut, func(string) string { return "" })
	return code, out.String(), errOut.String()
}

// TestLogExportAndVerifyBundle: an export of a real hub's entries verifies
// offline; a changed byte fails with exit 1, a file that is no bundle is a
// usage error, and so is a malformed witness key.
func TestLogExportAndVerifyBundle(t *testing.T) {
	hub, _ := busyHub(t)
	if _, err := hub.PublishCheckpoint(); err != nil {
		t.Fatal(err)
	}
	reg := regulator(t, hub)
	out := filepath.Join(t.TempDir(), "bundle.json")
	args := append([]string{"log", "export", "--by", "bank-a", "--out", out}, reg[:4]...) // --hub, --log-key
	args = append(args, reg[6:10]...)                                                     // --member, --key
	code, stdout, stderr := sparrRun(args...)
	if code != 0 || !strings.Contains(stdout, "exported to") {
		t.Fatalf("log export: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = sparrRun("log", "verify-bundle", out, "--log-key", hub.Keys.LogVerifier)
	if code != 0 || !strings.Contains(stdout, "verified") {
		t.Fatalf("verify-bundle: exit %d\n%s%s", code, stdout, stderr)
	}
	b, _ := os.ReadFile(out)
	if err := os.WriteFile(out, bytes.Replace(b, []byte("bank-a tokens ok"), []byte("bank-a tokens OK"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, stdout, _ = sparrRun("log", "verify-bundle", out, "--log-key", hub.Keys.LogVerifier); code != 1 || !strings.Contains(stdout, "VERIFICATION FAILED") {
		t.Errorf("tampered bundle: exit %d\n%s; want 1, failed", code, stdout)
	}
	if code, _, stderr = sparrRun("log", "verify-bundle", out, "--log-key", hub.Keys.LogVerifier, "--witness", "nonsense"); code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("bad witness key: exit %d, %q; want 2 and one line", code, stderr)
	}
	os.WriteFile(out, []byte("{}"), 0o600)
	if code, _, stderr = sparrRun("log", "verify-bundle", out, "--log-key", hub.Keys.LogVerifier); code != 2 || !strings.Contains(stderr, "malformed log bundle") {
		t.Errorf("not a bundle: exit %d, %q; want 2", code, stderr)
	}
}
