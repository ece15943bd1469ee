package main

import (
	"bufio"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBinary builds sparr, runs serve --dev as its own process, runs the
// member add command it suggests, and stops it with SIGTERM.
func TestBinary(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "sparr")
	const release = "v0.0.0-binarytest"
	build := exec.Command("go", "build", "-ldflags", "-X main.version="+release, "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// The suggested command has paths relative to the working directory.
	work := filepath.Join(tmp, "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	var environ []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SPARR_") {
			environ = append(environ, kv)
		}
	}

	cmd := exec.Command(bin, "serve", "--dev", "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0")
	cmd.Dir, cmd.Env = work, environ
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	defer func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
		}
	}()

	// Read stdout up to the suggested command, then keep draining it.
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	var issuer, metrics string
	var suggested []string
	timeout := time.After(20 * time.Second)
	for suggested == nil {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("serve exited before suggesting a command; stderr:\n%s", stderr.String())
			}
			if m := listeningLine.FindStringSubmatch(l); m != nil {
				issuer = m[2]
			}
			if m := metricsLine.FindStringSubmatch(l); m != nil {
				metrics = m[1]
			}
			if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "sparr member add "); ok {
				suggested = append([]string{"member", "add"}, shellSplit(t, rest)...)
			}
		case <-timeout:
			t.Fatalf("serve said nothing for 20 s; stderr:\n%s", stderr.String())
		}
	}
	go func() {
		for range lines {
		}
	}()
	if issuer == "" {
		t.Fatal("serve did not print the listening line before the suggestion")
	}
	if resp, err := http.Get(issuer + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz: %v", err)
	} else {
		resp.Body.Close()
	}

	// The hub exports the release it was built as, as sparr version
	// prints it.
	if status, body := get(t, metrics); status != http.StatusOK || !strings.Contains(string(body), `version="`+release+`"`) {
		t.Errorf("GET %s: %d, want sparr_build_info with version %q:\n%s", metrics, status, release, body)
	}
	if out, err := exec.Command(bin, "version").Output(); err != nil || !strings.HasPrefix(string(out), "sparr "+release) {
		t.Errorf("sparr version: %v, %q; want it to begin sparr %s", err, out, release)
	}

	add := exec.Command(bin, suggested...)
	add.Dir, add.Env = work, environ
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("the suggested %q failed: %v\n%s", suggested, err, out)
	}
	list := exec.Command(bin, "member", "list", "--hub", issuer)
	list.Dir, list.Env = work, append(slices.Clone(environ), "SPARR_DATA=sparr-data")
	out, err := list.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "bank-a") {
		t.Fatalf("member list: %v\n%s", err, out)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM, want status 0; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not exit within 20 s of SIGTERM")
	}
	if !strings.Contains(stderr.String(), `"msg":"store closed"`) {
		t.Errorf("the logs do not record closing the store:\n%s", stderr.String())
	}
	if got := memberIDs(t, filepath.Join(work, "sparr-data", "hub.db")); !slices.Equal(got, []string{"bank-a", "operator"}) {
		t.Errorf("the reopened store holds %q", got)
	}
}

// shellSplit splits a command line that quotes with single quotes only.
func shellSplit(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	in, started := false, false
	for _, r := range s {
		switch {
		case r == '\'':
			in, started = !in, true
		case r == ' ' && !in:
			if started {
				words = append(words, cur.String())
				cur.Reset()
				started = false
			}
		default:
			cur.WriteRune(r)
			started = true
		}
	}
	if in {
		t.Fatalf("unbalanced quotes in %q", s)
	}
	if started {
		words = append(words, cur.String())
	}
	return words
}
