package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
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

// lineWriter passes each write to a channel.
type lineWriter chan string

func (w lineWriter) Write(b []byte) (int, error) { w <- string(b); return len(b), nil }

// TestConsoleCommand: sparr console prints the URL that opens it, serves
// the overview there, verified, and stops on its context; a listen address
// off loopback is a usage error.
func TestConsoleCommand(t *testing.T) {
	hub, _ := busyHub(t)
	if _, err := hub.PublishCheckpoint(); err != nil {
		t.Fatal(err)
	}
	reg := regulator(t, hub)
	args := append([]string{"console"}, reg[:4]...)
	args = append(args, reg[6:10]...)
	if code, _, stderr := sparrRun(append(args, "--listen", "0.0.0.0:0")...); code != 2 || !strings.Contains(stderr, "loopback") {
		t.Errorf("--listen 0.0.0.0:0: exit %d, %q; want 2", code, stderr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := make(lineWriter, 10)
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, out, io.Discard, func(string) string { return "" }) }()
	var line string
	select {
	case line = <-out:
	case code := <-done:
		t.Fatalf("sparr console exited %d", code)
	}
	_, open, ok := strings.Cut(strings.TrimSpace(line), "open ")
	if !ok {
		t.Fatalf("sparr console printed %q, want the URL to open", line)
	}
	jar, _ := cookiejar.New(nil)
	resp, err := (&http.Client{Jar: jar}).Get(open)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "proof verified") {
		t.Errorf("the console's overview: %d\n%s", resp.StatusCode, page)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("sparr console stopped with exit %d, want 0", code)
	}
}
