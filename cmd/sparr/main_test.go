package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server/keyring"
)

// A syncBuffer is a buffer that a running command and the test may use at
// once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// environ makes an environment lookup from pairs; nothing else of the
// test process's environment leaks in.
func environ(pairs ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(pairs); i += 2 {
		m[pairs[i]] = pairs[i+1]
	}
	return func(k string) string { return m[k] }
}

// sparr runs the command line in-process.
func sparr(t *testing.T, getenv func(string) string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	if getenv == nil {
		getenv = environ()
	}
	var out, errb syncBuffer
	code = run(context.Background(), args, &out, &errb, getenv)
	return code, out.String(), errb.String()
}

// mustSparr runs the command line and fails the test unless it succeeds.
func mustSparr(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errb := sparr(t, nil, args...)
	if code != 0 {
		t.Fatalf("sparr %s: exit %d, stderr %q", strings.Join(args, " "), code, errb)
	}
	return out
}

// wantError checks that a failed command wrote one line starting "sparr: "
// that contains every fragment.
func wantError(t *testing.T, code int, stderr string, wantCode int, fragments ...string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("exit status %d, want %d (stderr %q)", code, wantCode, stderr)
	}
	if !strings.HasPrefix(stderr, "sparr: ") || strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("stderr %q, want one line starting \"sparr: \"", stderr)
	}
	for _, f := range fragments {
		if !strings.Contains(stderr, f) {
			t.Errorf("stderr %q does not say %q", stderr, f)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	data := t.TempDir()
	for _, tc := range []struct {
		name      string
		args      []string
		fragments []string
		env       []string // pairs of the environment
	}{
		{"no command", nil, []string{"missing command"}, nil},
		{"unknown command", []string{"frobnicate"}, []string{`unknown command "frobnicate"`, "sparr -h"}, nil},
		{"unknown subcommand", []string{"member", "delete"}, []string{`member: unknown command "delete"`}, nil},
		{"unknown flag", []string{"init", "--data", data, "--colour"}, []string{"-colour", "sparr init -h"}, nil},
		{"init without --data", []string{"init"}, []string{"init: missing --data"}, nil},
		{"init with a bad algorithm", []string{"init", "--data", data, "--algorithm", "RS256"}, []string{"EdDSA or ES256"}, nil},
		{"init with a bad log origin", []string{"init", "--data", data, "--log-origin", "hub+log"}, []string{"'+'"}, nil},
		{"init with an argument", []string{"init", "--data", data, "extra"}, []string{`unexpected argument "extra"`}, nil},
		{"serve without --data", []string{"serve", "--insecure-http"}, []string{"missing --data"}, nil},
		{"serve without TLS", []string{"serve", "--data", data}, []string{"--tls-cert", "--insecure-http"}, nil},
		{"serve with half of TLS", []string{"serve", "--data", data, "--tls-cert", "c.pem"}, []string{"both --tls-cert and --tls-key"}, nil},
		{"serve --dev on a public address", []string{"serve", "--dev", "--addr", "0.0.0.0:8080"}, []string{"loopback"}, nil},
		{"serve --dev on every interface", []string{"serve", "--dev", "--addr", ":8080"}, []string{"loopback"}, nil},
		{"serve with a bad rate", []string{"serve", "--dev", "--rate-checks", "fast"}, []string{"PERSEC/BURST"}, nil},
		{"serve with an http issuer over TLS", []string{"serve", "--data", data, "--tls-cert", "c", "--tls-key", "k", "--issuer", "http://hub.example"}, []string{"https://"}, nil},
		{"serve with a bad proxy", []string{"serve", "--dev", "--trusted-proxies", "10.0.0.0/8,proxy"}, []string{`"proxy"`}, nil},
		{"serve with a bad retry schedule", []string{"serve", "--dev", "--retry-schedule", "0s,soon"}, []string{"-retry-schedule", "durations of 0s or more"}, nil},
		{"serve with a negative retry wait", []string{"serve", "--dev", "--retry-schedule", "0s,-5s"}, []string{"-retry-schedule", "durations of 0s or more"}, nil},
		{"serve with jitter over 1", []string{"serve", "--dev", "--retry-jitter", "1.5"}, []string{"--retry-jitter", "0 (no jitter) to 1"}, nil},
		{"serve with a negative thaw lead", []string{"serve", "--dev", "--max-thaw-ahead", "-1h"}, []string{"--max-thaw-ahead"}, nil},
		{"serve with too much clock skew", []string{"serve", "--dev", "--clock-skew", "10m"}, []string{"--clock-skew", "0 to 5m0s"}, nil},
		{"serve with an OTLP endpoint not a URL", []string{"serve", "--dev", "--otlp-endpoint", "collector:4318"}, []string{"--otlp-endpoint", "http or https URL"}, nil},
		{"serve with a token rate not a number", []string{"serve", "--dev", "--tokens-per-second", "NaN"}, []string{"--tokens-per-second NaN", "above 0"}, nil},
		{"serve with an infinite token rate", []string{"serve", "--dev", "--tokens-per-second", "+Inf"}, []string{"--tokens-per-second +Inf", "up to 100000"}, nil},
		{"serve with a daily quota over the bound", []string{"serve", "--dev", "--tokens-per-day", "1000000000"}, []string{"--tokens-per-day 1000000000", "from 1 to 100000000"}, nil},
		{"serve with negative clock skew", []string{"serve", "--dev", "--clock-skew", "-1s"}, []string{"--clock-skew"}, nil},
		{"serve with a witness without its key", []string{"serve", "--dev", "--witness", "https://witness.example"}, []string{"-witness", "URL and its key"}, nil},
		{"serve with a witness key first", []string{"serve", "--dev", "--witness", "w.example+01234567+BAAA https://witness.example"}, []string{"-witness", "URL comes first"}, nil},
		{"serve with a bad witness key", []string{"serve", "--dev", "--witness", "https://witness.example w.example+01234567+BAAA"}, []string{"-witness", "malformed witness key"}, nil},
		{"serve with a bad jurisdiction", []string{"serve", "--dev", "--jurisdiction", "Sweden"}, []string{"--jurisdiction", "ISO 3166-1 alpha-2"}, nil},
		{"serve with peers but no jurisdiction", []string{"serve", "--dev", "--peers", filepath.Join(data, "peers.json")}, []string{"--peers needs --jurisdiction"}, nil},
		{"serve with a missing peers file", []string{"serve", "--dev", "--jurisdiction", "SE", "--peers", filepath.Join(data, "peers.json")}, []string{"--peers", "no such file"}, nil},
		{"keys rotate without --data", []string{"keys", "rotate"}, []string{"missing --data"}, nil},
		{"member add without --hub", []string{"member", "add", "--id", "bank-a", "--name", "A", "--roles", "check", "--jwks", "k.json"}, []string{"missing --hub"}, nil},
		{"member add with an unknown role", []string{"member", "add", "--hub", "http://127.0.0.1:1", "--id", "bank-a", "--name", "A", "--roles", "check,admin", "--jwks", "k.json"}, []string{`unknown role "admin"`}, nil},
		{"member add with two key sources", []string{"member", "add", "--id", "bank-a", "--name", "A", "--roles", "check", "--jwks", "k.json", "--jwks-url", "https://k.example"}, []string{"--jwks FILE or --jwks-url URL"}, nil},
		{"member add with a negative quota", []string{"member", "add", "--hub", "http://127.0.0.1:1", "--id", "bank-a", "--name", "A", "--roles", "check", "--jwks", "k.json", "--tokens-per-day", "-1"}, []string{"--tokens-per-day -1", "from 0 (the hub's default) to 100000000"}, nil},
		{"member add with a quota over its bound", []string{"member", "add", "--hub", "http://127.0.0.1:1", "--id", "bank-a", "--name", "A", "--roles", "check", "--jwks", "k.json", "--tokens-per-day", "1000000000"}, []string{"--tokens-per-day 1000000000", "to 100000000"}, nil},
		{"member add with a quota not a number", []string{"member", "add", "--hub", "http://127.0.0.1:1", "--id", "bank-a", "--name", "A", "--roles", "check", "--jwks", "k.json", "--tokens-per-second", "fast"}, []string{`"fast"`, "-tokens-per-second"}, nil},
		{"member add with a rate not a number", []string{"member", "add", "--hub", "http://127.0.0.1:1", "--id", "bank-a", "--name", "A", "--roles", "check", "--jwks", "k.json", "--tokens-per-second", "NaN"}, []string{"--tokens-per-second NaN"}, nil},
		{"member update with quotas and the defaults", []string{"member", "update", "bank-a", "--hub", "http://127.0.0.1:1", "--tokens-per-day", "5", "--default-quotas"}, []string{"--default-quotas, not both"}, nil},
		{"member show without an id", []string{"member", "show", "--hub", "http://127.0.0.1:1"}, []string{"missing the member ID"}, nil},
		{"member update with nothing to change", []string{"member", "update", "bank-a", "--hub", "http://127.0.0.1:1"}, []string{"nothing to change"}, nil},
		{"member list without an operator key", []string{"member", "list", "--hub", "http://127.0.0.1:1"}, []string{"--operator-key"}, nil},
		{"backup without --out", []string{"backup", "--data", data}, []string{"missing --out"}, nil},
		{"backup without a source", []string{"backup", "--out", filepath.Join(data, "b.db")}, []string{"--hub URL", "--data DIR"}, nil},
		// The environment's cases also give a flag their command refuses,
		// so that a variable not refused fails the test rather than runs
		// a hub, a benchmark or the demo.
		{"bad duration in the environment", []string{"serve", "--dev", "--addr", "0.0.0.0:8080"}, []string{`serve: SPARR_MAX_THAW="three days": want a duration`}, []string{"SPARR_MAX_THAW", "three days"}},
		{"bad boolean in the environment", []string{"bench", "--runs", "1"}, []string{`bench: SPARR_BENCH_JSON="yes": want true or false`}, []string{"SPARR_BENCH_JSON", "yes"}},
		{"bad number in the environment", []string{"demo", "extra"}, []string{`demo: SPARR_DEMO_MEMBERS="many": want a whole number`}, []string{"SPARR_DEMO_MEMBERS", "many"}},
		{"bad rate in the environment", []string{"serve", "--dev", "--addr", "0.0.0.0:8080"}, []string{`SPARR_RATE_CHECKS="fast"`, "PERSEC/BURST"}, []string{"SPARR_RATE_CHECKS", "fast"}},
		{"a command's variable of before", []string{"backup", "--data", data}, []string{"backup: SPARR_OUT is not read", "--out", "SPARR_BACKUP_OUT"}, []string{"SPARR_OUT", "b.db"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := sparr(t, environ(tc.env...), tc.args...)
			wantError(t, code, stderr, 2, tc.fragments...)
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"help"}, {"serve", "-h"}, {"help", "serve"}, {"member", "add", "--help"}} {
		code, stdout, stderr := sparr(t, nil, args...)
		if code != 0 || stderr != "" {
			t.Errorf("sparr %s: exit %d, stderr %q; want 0 and nothing", strings.Join(args, " "), code, stderr)
		}
		if !strings.HasPrefix(stdout, "Usage: sparr") {
			t.Errorf("sparr %s: stdout %q, want a usage", strings.Join(args, " "), stdout)
		}
	}
	_, stdout, _ := sparr(t, nil, "serve", "-h")
	for _, want := range []string{"--suspicion-legal-basis BASIS  (SPARR_SUSPICION_LEGAL_BASIS)", "--data DIR  (SPARR_DATA)", "--metrics-addr ADDR  (SPARR_METRICS_ADDR)", "(default 20/40)", "--retry-schedule WAITS  (SPARR_RETRY_SCHEDULE)", "--clock-skew DURATION  (SPARR_CLOCK_SKEW)", "--max-thaw-ahead DURATION  (SPARR_MAX_THAW_AHEAD)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("serve -h does not list %q:\n%s", want, stdout)
		}
	}
}

func TestVersion(t *testing.T) {
	out := mustSparr(t, "version")
	if !regexp.MustCompile(`^sparr \S+ .*go1\.\d+`).MatchString(out) {
		t.Errorf("version printed %q", out)
	}
	for _, flag := range []string{"--version", "-version"} {
		if got := mustSparr(t, flag); got != out {
			t.Errorf("sparr %s printed %q, want what sparr version prints, %q", flag, got, out)
		}
	}
}

func TestInit(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "hub")
	out := mustSparr(t, "init", "--data", data, "--log-origin", "hub.example/sparr-log")
	dir := filepath.Join(data, "keys")
	names := []string{"signing-0001.jwk", "token.key", "log.key", "webhook.key", "operator.jwk", "operator.pub.jwk"}
	for _, n := range names {
		path := filepath.Join(dir, n)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", n, fi.Mode().Perm())
		}
		if !strings.Contains(out, path) {
			t.Errorf("init output does not name %s:\n%s", path, out)
		}
	}
	if want := "The operator key is " + filepath.Join(dir, "operator.jwk"); !strings.Contains(out, want) {
		t.Errorf("init output does not say %q:\n%s", want, out)
	}
	keys, err := keyring.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if keys.LogOrigin != "hub.example/sparr-log" {
		t.Errorf("log origin %q, want hub.example/sparr-log", keys.LogOrigin)
	}
	if got := keys.Active().Algorithm(); got != protocol.EdDSA {
		t.Errorf("signing algorithm %s, want EdDSA", got)
	}

	t.Run("refuses to overwrite", func(t *testing.T) {
		before, err := os.ReadFile(filepath.Join(dir, "signing-0001.jwk"))
		if err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := sparr(t, nil, "init", "--data", data)
		wantError(t, code, stderr, 1, "already exist", "refusing to overwrite", "Nothing was changed", "sparr keys rotate")
		if stdout != "" {
			t.Errorf("stdout %q, want nothing", stdout)
		}
		after, err := os.ReadFile(filepath.Join(dir, "signing-0001.jwk"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before, after) {
			t.Error("the signing key changed")
		}
	})

	t.Run("ES256 from the environment", func(t *testing.T) {
		data := t.TempDir()
		code, _, stderr := sparr(t, environ("SPARR_DATA", data, "SPARR_ALGORITHM", "ES256"), "init")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		keys, err := keyring.Load(filepath.Join(data, "keys"))
		if err != nil {
			t.Fatal(err)
		}
		if got := keys.Active().Algorithm(); got != protocol.ES256 {
			t.Errorf("signing algorithm %s, want ES256", got)
		}
		if !strings.HasSuffix(keys.LogOrigin, "/sparr-log") || strings.ContainsAny(keys.LogOrigin, "+ \t") {
			t.Errorf("default log origin %q, want <hostname>/sparr-log", keys.LogOrigin)
		}
	})

	t.Run("flag beats environment", func(t *testing.T) {
		data := t.TempDir()
		code, _, stderr := sparr(t, environ("SPARR_DATA", filepath.Join(data, "env"), "SPARR_ALGORITHM", "ES256"), "init", "--data", filepath.Join(data, "flag"), "--algorithm", "EdDSA")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		keys, err := keyring.Load(filepath.Join(data, "flag", "keys"))
		if err != nil {
			t.Fatal(err)
		}
		if got := keys.Active().Algorithm(); got != protocol.EdDSA {
			t.Errorf("signing algorithm %s, want EdDSA", got)
		}
		if _, err := os.Stat(filepath.Join(data, "env")); err == nil {
			t.Error("init also used SPARR_DATA")
		}
	})
}

// A hubProcess is an in-process sparr serve.
type hubProcess struct {
	URL     string
	Data    string
	Metrics string
	Stdout  *syncBuffer
	Stderr  *syncBuffer
	cancel  context.CancelFunc
	done    chan int
	code    int
	stopped bool
}

var listeningLine = regexp.MustCompile(`(?m)^listening on (\S+), issuer (\S+)$`)
var metricsLine = regexp.MustCompile(`(?m)^metrics on (\S+)$`)

// startHub runs sparr serve over data on a free loopback port until the
// test ends or stop is called.
func startHub(t *testing.T, data string, extra ...string) *hubProcess {
	t.Helper()
	return startServe(t, data, append([]string{"serve", "--data", data, "--addr", "127.0.0.1:0", "--metrics-addr", "", "--insecure-http"}, extra...))
}

// startServe runs sparr with args, a serve command over data, until the
// test ends or stop is called.
func startServe(t *testing.T, data string, args []string) *hubProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h := &hubProcess{Data: data, Stdout: &syncBuffer{}, Stderr: &syncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() { h.done <- run(ctx, args, h.Stdout, h.Stderr, environ()) }()
	t.Cleanup(func() { h.stop(t) })
	deadline := time.After(20 * time.Second)
	for {
		if m := listeningLine.FindStringSubmatch(h.Stdout.String()); m != nil {
			h.URL = m[2]
			if mm := metricsLine.FindStringSubmatch(h.Stdout.String()); mm != nil {
				h.Metrics = mm[1]
			}
			return h
		}
		select {
		case code := <-h.done:
			h.stopped, h.code = true, code
			t.Fatalf("serve exited with %d before listening; stderr:\n%s", code, h.Stderr)
		case <-deadline:
			t.Fatalf("serve did not say it was listening; stdout:\n%s\nstderr:\n%s", h.Stdout, h.Stderr)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// stop shuts the hub down as a signal would and checks it exited cleanly.
func (h *hubProcess) stop(t *testing.T) {
	t.Helper()
	if h.stopped {
		return
	}
	h.stopped = true
	h.cancel()
	select {
	case h.code = <-h.done:
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop within 20 s")
	}
	if h.code != 0 {
		t.Errorf("serve exited with %d, want 0; stderr:\n%s", h.code, h.Stderr)
	}
}

// get fetches a path of the hub.
func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func jwksKids(t *testing.T, hubURL string) []string {
	t.Helper()
	status, body := get(t, hubURL+"/.well-known/jwks.json")
	if status != http.StatusOK {
		t.Fatalf("GET jwks.json: %d %s", status, body)
	}
	ks, err := protocol.ParseKeySet(body)
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range ks.Keys() {
		kids = append(kids, k.KeyID())
	}
	return kids
}

func TestKeysRotate(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	mustSparr(t, "init", "--data", data)
	hub := startHub(t, data)
	before := jwksKids(t, hub.URL)
	if len(before) != 1 {
		t.Fatalf("JWKS before rotation has %d keys, want 1", len(before))
	}
	hub.stop(t)

	out := mustSparr(t, "keys", "rotate", "--data", data, "--algorithm", "ES256")
	m := regexp.MustCompile(`Added record-signing key (\S+) \(ES256\) in (\S+)\.`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("rotate printed %q, want the new kid and file", out)
	}
	kid := m[1]
	if m[2] != filepath.Join(data, "keys", "signing-0002.jwk") {
		t.Errorf("new key in %s, want signing-0002.jwk", m[2])
	}
	for _, want := range []string{"next start", "stay in /.well-known/jwks.json"} {
		if !strings.Contains(out, want) {
			t.Errorf("rotate output does not say %q:\n%s", want, out)
		}
	}

	hub = startHub(t, data)
	after := jwksKids(t, hub.URL)
	if len(after) != 2 || after[0] != kid || after[1] != before[0] {
		t.Errorf("JWKS after rotation %q, want the new key %s first and the old %s still there", after, kid, before[0])
	}
	if !strings.Contains(hub.Stderr.String(), `"signing_kid":"`+kid+`"`) {
		t.Errorf("the hub's start log does not name the new signing key %s", kid)
	}

	t.Run("without keys", func(t *testing.T) {
		code, _, stderr := sparr(t, nil, "keys", "rotate", "--data", t.TempDir())
		wantError(t, code, stderr, 1, "no keys", "sparr init")
	})
}

// configuration fetches the hub's discovery document.
func configuration(t *testing.T, hubURL string) map[string]any {
	t.Helper()
	status, body := get(t, hubURL+"/.well-known/sparr-configuration")
	if status != http.StatusOK {
		t.Fatalf("GET sparr-configuration: %d %s", status, body)
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestMemberKeysFile checks what member add says of a keys file it cannot
// use, before it asks the hub anything.
func TestMemberKeysFile(t *testing.T) {
	keys := make([]*protocol.SigningKey, 2)
	for i := range keys {
		k, err := protocol.GenerateSigningKey(protocol.EdDSA, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k
	}
	thumbprint, err := protocol.Thumbprint(keys[1].Public().CryptoPublicKey())
	if err != nil {
		t.Fatal(err)
	}
	jwk := func(k *protocol.SigningKey, withKid bool) map[string]any {
		t.Helper()
		b, err := json.Marshal(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if !withKid {
			delete(m, "kid")
		}
		return m
	}
	private, err := keys[0].MarshalPrivateJWK()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		file      any
		fragments []string
	}{
		{"a set whose second key has no kid", map[string]any{"keys": []any{jwk(keys[0], true), jwk(keys[1], false)}},
			[]string{`the key at index 1 of the set has no "kid"`, `add one to it, such as "kid": "` + thumbprint + `"`}},
		{"one JWK without a kid", jwk(keys[1], false),
			[]string{`the key has no "kid"`, `"kid": "` + thumbprint + `"`}},
		{"a set with a private key", map[string]any{"keys": []any{json.RawMessage(private)}},
			[]string{"the key at index 0 of the set", "private key"}},
		{"an empty set", map[string]any{"keys": []any{}}, []string{`no "keys"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "jwks.json")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, stderr := sparr(t, nil, "member", "add", "--hub", "http://127.0.0.1:1", "--data", t.TempDir(), "--id", "bank-a", "--name", "A", "--roles", "check", "--jwks", path)
			wantError(t, code, stderr, 1, append(tc.fragments, path)...)
			if strings.Contains(stderr, "give the member's public keys as a JWK Set") {
				t.Errorf("stderr %q asks for a JWK Set", stderr)
			}
		})
	}
}

// helpFlag matches a flag's line in a command's help: the flag and the
// variable that sets it, or "command line only".
var helpFlag = regexp.MustCompile(`(?m)^  --(\S+)(?: \S+)?  \(([^)]*)\)$`)

// TestEnvironmentNames checks every command's help against the rule for
// variables: a shared flag's is SPARR_<FLAG>, any other's carries its
// command, so that no two commands read one variable for different
// things; and that docs/operations.md names each as the help does.
func TestEnvironmentNames(t *testing.T) {
	shared := map[string]bool{"data": true, "hub": true, "operator-key": true, "algorithm": true}
	upper := strings.NewReplacer("-", "_", " ", "_")
	readers := map[string][]string{} // variable → the commands and flags that read it
	byFlag := map[string]map[string]bool{}
	var walk func(path []string, cmds []*command)
	walk = func(path []string, cmds []*command) {
		for _, c := range cmds {
			p := append(slices.Clone(path), c.name)
			if c.sub != nil {
				walk(p, c.sub)
				continue
			}
			name := strings.Join(p, " ")
			code, out, errb := sparr(t, nil, append(p, "-h")...)
			if code != 0 {
				t.Fatalf("sparr %s -h: exit %d, %s", name, code, errb)
			}
			for _, m := range helpFlag.FindAllStringSubmatch(out, -1) {
				flagName, v := m[1], m[2]
				if v == "command line only" {
					continue
				}
				want := "SPARR_" + strings.ToUpper(upper.Replace(name+"_"+flagName))
				if shared[flagName] || name == "serve" {
					want = "SPARR_" + strings.ToUpper(upper.Replace(flagName))
				}
				if v != want {
					t.Errorf("sparr %s --%s: variable %s, want %s", name, flagName, v, want)
				}
				readers[v] = append(readers[v], name+" --"+flagName)
				if byFlag[flagName] == nil {
					byFlag[flagName] = map[string]bool{}
				}
				byFlag[flagName][v] = true
			}
		}
	}
	walk(nil, commands())
	if len(readers) < 40 {
		t.Fatalf("found %d variables in the commands' help, want every flag's", len(readers))
	}
	for v, r := range readers {
		if len(r) > 1 && !shared[strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(v, "SPARR_"), "_", "-"))] {
			t.Errorf("%s is read by %q, want one command", v, r)
		}
	}

	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for v, r := range readers {
		if !strings.Contains(doc, "`"+v+"`") {
			t.Errorf("docs/operations.md does not name %s (%s)", v, r[0])
		}
	}
	rows := regexp.MustCompile("(?m)^\\| `--([a-z-]+)[^`]*` \\| `(SPARR_[A-Z_]+)`").FindAllStringSubmatch(doc, -1)
	if len(rows) < 40 {
		t.Fatalf("docs/operations.md has %d rows of a flag and its variable, want every flag's", len(rows))
	}
	for _, row := range rows {
		if !byFlag[row[1]][row[2]] {
			t.Errorf("docs/operations.md gives --%s the variable %s, which no command reads for it", row[1], row[2])
		}
	}
}
