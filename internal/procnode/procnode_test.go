package procnode

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sh returns a node running a shell script in place of sparr serve.
func sh(t *testing.T, script string) *Node {
	t.Helper()
	n := &Node{ID: "n1", Args: []string{"-c", script}}
	t.Cleanup(func() { n.Kill() })
	return n
}

func shell(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	return bin
}

func TestStartKillStart(t *testing.T) {
	bin := shell(t)
	n := sh(t, "echo starting; echo listening on 127.0.0.1:1; exec sleep 30")
	for i := 1; i <= 2; i++ {
		if err := n.Start(context.Background(), bin); err != nil {
			t.Fatal(err)
		}
		if !n.Running() || n.Pid() == 0 {
			t.Fatalf("start %d: running %v, pid %d, want a running process", i, n.Running(), n.Pid())
		}
		if got := n.Starts(); got != i {
			t.Errorf("Starts() = %d, want %d", got, i)
		}
		if got := n.Stdout(); !strings.Contains(got, "listening on 127.0.0.1:1\n") {
			t.Errorf("stdout %q, want the listening line", got)
		}
		err := n.Kill()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("Kill() = %v, want killed by SIGKILL", err)
		}
		select {
		case <-n.Exited():
		default:
			t.Fatal("Exited() not closed after Kill")
		}
		if n.Running() || n.Pid() != 0 {
			t.Errorf("after Kill: running %v, pid %d", n.Running(), n.Pid())
		}
	}
	if err := n.Kill(); !errors.Is(err, ErrNotRunning) {
		t.Errorf("second Kill() = %v, want ErrNotRunning", err)
	}
}

func TestStop(t *testing.T) {
	bin := shell(t)
	// The shell exits 0 on SIGTERM through its trap.
	n := sh(t, "trap 'exit 0' TERM; echo listening on 127.0.0.1:1; while :; do sleep 0.05; done")
	if err := n.Start(context.Background(), bin); err != nil {
		t.Fatal(err)
	}
	if err := n.Stop(10 * time.Second); err != nil {
		t.Fatalf("Stop() = %v, want a clean exit", err)
	}
	if n.Running() {
		t.Error("running after Stop")
	}
	// A process that ignores SIGTERM is killed after the grace period.
	n = sh(t, "trap '' TERM; echo listening on 127.0.0.1:1; while :; do sleep 0.05; done")
	if err := n.Start(context.Background(), bin); err != nil {
		t.Fatal(err)
	}
	if err := n.Stop(100 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "did not stop") {
		t.Fatalf("Stop() = %v, want did not stop", err)
	}
	if n.Running() {
		t.Error("running after Stop killed it")
	}
}

func TestStartExitsBeforeListening(t *testing.T) {
	bin := shell(t)
	n := sh(t, "echo 'config: bad flag' >&2; exit 2")
	err := n.Start(context.Background(), bin)
	if err == nil || !strings.Contains(err.Error(), "config: bad flag") || !strings.Contains(err.Error(), "n1") {
		t.Fatalf("Start() = %v, want an error naming the node with its stderr", err)
	}
	if n.Running() || n.Starts() != 1 {
		t.Errorf("running %v after %d starts, want stopped after 1", n.Running(), n.Starts())
	}
}

// TestStartRetriesBusyPort: a process that exits with "address already in
// use" is started again until it listens.
func TestStartRetriesBusyPort(t *testing.T) {
	bin := shell(t)
	mark := filepath.Join(t.TempDir(), "tries")
	n := sh(t, `echo x >> "$0"; if [ $(wc -l < "$0") -lt 3 ]; then echo 'listen tcp 127.0.0.1:1: bind: address already in use' >&2; exit 1; fi; echo listening on 127.0.0.1:1; exec sleep 30`)
	n.Args = append(n.Args, mark)
	if err := n.Start(context.Background(), bin); err != nil {
		t.Fatal(err)
	}
	if got := n.Starts(); got != 3 {
		t.Errorf("Starts() = %d, want 3", got)
	}
	// Past its patience, Start gives up.
	n.Kill()
	os.Remove(mark)
	n.Patience = 300 * time.Millisecond
	n.Args[1] = `echo 'listen tcp 127.0.0.1:1: bind: address already in use' >&2; exit 1`
	if err := n.Start(context.Background(), bin); err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Start() = %v, want address already in use", err)
	}
}

func TestStartCanceled(t *testing.T) {
	bin := shell(t)
	n := sh(t, "exec sleep 30")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := n.Start(ctx, bin); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start() = %v, want context.Canceled", err)
	}
	if n.Running() {
		t.Error("running after a canceled Start")
	}
}

func TestEnviron(t *testing.T) {
	t.Setenv("SPARR_LOG_LEVEL", "debug")
	t.Setenv("PROCNODE_TEST", "kept")
	env := Environ("SPARR_LOG_LEVEL=warn")
	var sparr []string
	kept := false
	for _, kv := range env {
		if strings.HasPrefix(kv, "SPARR_") {
			sparr = append(sparr, kv)
		}
		kept = kept || kv == "PROCNODE_TEST=kept"
	}
	if len(sparr) != 1 || sparr[0] != "SPARR_LOG_LEVEL=warn" || !kept {
		t.Errorf("Environ: SPARR_ variables %q, PROCNODE_TEST kept %v; want only the extra one, and kept", sparr, kept)
	}
}

func TestCopyKeys(t *testing.T) {
	from, to := t.TempDir(), filepath.Join(t.TempDir(), "n2", "keys")
	if err := os.WriteFile(filepath.Join(from, "hub.key"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(from, "old"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := CopyKeys(from, to); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(to, "hub.key"))
	if err != nil || string(b) != "secret" {
		t.Fatalf("copied key: %q, %v; want secret", b, err)
	}
	fi, err := os.Stat(filepath.Join(to, "hub.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("copied key mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	if _, err := os.Stat(filepath.Join(to, "old")); !os.IsNotExist(err) {
		t.Errorf("subdirectory copied (%v), want files only", err)
	}
	if err := CopyKeys(filepath.Join(from, "missing"), to); err == nil {
		t.Error("CopyKeys from a missing directory: no error")
	}
}
