package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server/keyring"
)

// TestServeRefusesARestoreUntilDeclared: sparr serve on a hub.db restored
// from a backup older than the last checkpoint refuses to start, saying
// what to do; with --declare-rollback it starts, and sparr log verify
// reports the declared rollback with its reason instead of failing; the
// declaration is refused once there is nothing to declare, and a normal
// restart passes. A restore that skips the declaration (the last
// checkpoint file deleted) still fails verification.
func TestServeRefusesARestoreUntilDeclared(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	mustSparr(t, "init", "--data", data)
	keys, err := keyring.Load(keysDir(data))
	if err != nil {
		t.Fatal(err)
	}
	hub := startHub(t, data)
	regKey, regJWKS := privateMemberKey(t)
	mustSparr(t, "member", "add", "--hub", hub.URL, "--data", data, "--id", "fi", "--name", "FI", "--roles", "regulator", "--jwks", regJWKS)
	backup := filepath.Join(t.TempDir(), "backup.db")
	mustSparr(t, "backup", "--hub", hub.URL, "--data", data, "--out", backup)
	mustSparr(t, "member", "add", "--hub", hub.URL, "--data", data, "--id", "bank-a", "--name", "Bank A", "--roles", "check", "--jwks", memberKeyFile(t, false))
	hub.stop(t)
	hub = startHub(t, data) // it signs a checkpoint covering bank-a's entry at start
	state := filepath.Join(t.TempDir(), "state.json")
	verify := func(url string) (int, string) {
		code, out, errOut := sparr(t, nil, "log", "verify", "--hub", url, "--log-key", keys.LogVerifier, "--state", state, "--member", "fi", "--key", regKey)
		return code, out + errOut
	}
	if code, out := verify(hub.URL); code != 0 {
		t.Fatalf("verify before the restore: exit %d\n%s", code, out)
	}
	hub.stop(t)
	last, err := os.ReadFile(lastCheckpointPath(data))
	if err != nil {
		t.Fatal(err)
	}

	copyFile(t, backup, dbPath(data))
	serve := []string{"serve", "--data", data, "--addr", "127.0.0.1:0", "--metrics-addr", "", "--insecure-http"}
	code, stderr := serveMustFail(t, nil, serve...)
	wantServeError(t, code, stderr, "does not extend the last checkpoint", "Nothing was changed", "--declare-rollback 'REASON'", "docs/operations.md")
	if now, _ := os.ReadFile(lastCheckpointPath(data)); string(now) != string(last) {
		t.Error("the refused start changed the last checkpoint file")
	}
	// A variable does not declare a rollback: the flag is command line only.
	code, stderr = serveMustFail(t, environ("SPARR_DECLARE_ROLLBACK", "left over"), serve...)
	wantServeError(t, code, stderr, "does not extend the last checkpoint")

	hub = startHub(t, data, "--declare-rollback", "INC-4711 restored the 02:00 backup")
	code, out := verify(hub.URL)
	if code != 0 || !strings.Contains(out, "DECLARED ROLLBACK") || !strings.Contains(out, "reason: INC-4711_restored_the_02:00_backup") {
		t.Fatalf("verify after the declared rollback: exit %d, want 0 reporting the declared rollback with its reason\n%s", code, out)
	}
	hub.stop(t)

	code, stderr = serveMustFail(t, nil, append(serve, "--declare-rollback", "INC-4711 again")...)
	wantServeError(t, code, stderr, "no rollback to declare", "start without declaring a rollback")
	hub = startHub(t, data)
	if code, out := verify(hub.URL); code != 0 || strings.Contains(out, "DECLARED ROLLBACK") {
		t.Fatalf("verify after a normal restart: exit %d, want 0 with nothing declared\n%s", code, out)
	}
	hub.stop(t)

	// The same restore, with the last checkpoint file deleted to skip the
	// declaration: the hub starts, but the regulator's check fails.
	copyFile(t, backup, dbPath(data))
	if err := os.Remove(lastCheckpointPath(data)); err != nil {
		t.Fatal(err)
	}
	hub = startHub(t, data)
	if code, out := verify(hub.URL); code != 1 || !strings.Contains(out, "VERIFICATION FAILED") {
		t.Fatalf("verify after an undeclared rollback: exit %d, want 1\n%s", code, out)
	}
}

func TestServeDeclareRollbackUsage(t *testing.T) {
	t.Parallel()
	code, _, stderr := sparr(t, nil, "serve", "--data", t.TempDir(), "--insecure-http", "--declare-rollback", "diskfel på nod 2")
	wantError(t, code, stderr, 2, "--declare-rollback", "letters")
}

// serveMustFail runs sparr serve with args, which must exit before it
// listens; if it listens, it is stopped and the test fails.
func serveMustFail(t *testing.T, getenv func(string) string, args ...string) (code int, stderr string) {
	t.Helper()
	if getenv == nil {
		getenv = environ()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, &out, &errb, getenv) }()
	for {
		select {
		case code := <-done:
			return code, errb.String()
		case <-time.After(10 * time.Millisecond):
		}
		if listeningLine.MatchString(out.String()) {
			cancel()
			<-done
			t.Fatalf("sparr %s started serving; want it to refuse", strings.Join(args, " "))
		}
	}
}

// wantServeError checks that sparr serve failed with status 1 and a last
// line, after its logs, that says each fragment.
func wantServeError(t *testing.T, code int, stderr string, fragments ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	wantError(t, code, lines[len(lines)-1]+"\n", 1, fragments...)
}

// privateMemberKey writes a new member key: the private JWK (mode 0600)
// and the public key set, and returns both paths.
func privateMemberKey(t *testing.T) (private, public string) {
	t.Helper()
	k, err := protocol.GenerateSigningKey(protocol.EdDSA, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := k.MarshalPrivateJWK()
	if err != nil {
		t.Fatal(err)
	}
	ks, err := protocol.NewKeySet(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	pub, err := json.Marshal(ks)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	private, public = filepath.Join(dir, "key.jwk"), filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(private, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(public, pub, 0o644); err != nil {
		t.Fatal(err)
	}
	return private, public
}
