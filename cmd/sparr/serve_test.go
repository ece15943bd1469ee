package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/hubtest"
	"github.com/sparr-dev/sparr/server/keyring"
	"github.com/sparr-dev/sparr/server/store"
)

// newHub makes a data directory with keys and starts a hub on it.
func newHub(t *testing.T, extra ...string) *hubProcess {
	t.Helper()
	data := t.TempDir()
	mustSparr(t, "init", "--data", data)
	return startHub(t, data, extra...)
}

// memberKeyFile writes a new member's public key set and returns its path.
func memberKeyFile(t *testing.T, single bool) string {
	t.Helper()
	k, err := protocol.GenerateSigningKey(protocol.EdDSA, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	if single {
		b, err = json.Marshal(k.Public())
	} else {
		ks, kerr := protocol.NewKeySet(k.Public())
		if kerr != nil {
			t.Fatal(kerr)
		}
		b, err = ks.MarshalJSON()
	}
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

type memberDoc struct {
	Member   api.Member `json:"member"`
	LogIndex uint64     `json:"log_index"`
}

func decodeMember(t *testing.T, out string) memberDoc {
	t.Helper()
	var doc memberDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("output is not a member document: %v\n%s", err, out)
	}
	if !strings.Contains(out, "\n  ") {
		t.Errorf("output is not indented JSON:\n%s", out)
	}
	return doc
}

func TestMemberCommands(t *testing.T) {
	t.Parallel()
	hub := newHub(t)
	op := []string{"--hub", hub.URL, "--operator-key", keyring.OperatorKeyPath(filepath.Join(hub.Data, "keys"))}
	member := func(args ...string) (int, string, string) {
		t.Helper()
		return sparr(t, nil, append(append([]string{"member"}, args...), op...)...)
	}
	mustMember := func(args ...string) string {
		t.Helper()
		code, out, errb := member(args...)
		if code != 0 {
			t.Fatalf("sparr member %s: exit %d, stderr %q", strings.Join(args, " "), code, errb)
		}
		return out
	}

	added := decodeMember(t, mustMember("add", "--json", "--id", "bank-a", "--name", "Bank A AB", "--roles", "flag,check", "--jwks", memberKeyFile(t, false)))
	if m := added.Member; m.ID != "bank-a" || m.Name != "Bank A AB" || !slices.Equal(m.Roles, []api.Role{"check", "flag"}) || m.Status != api.MemberActive {
		t.Errorf("added %+v", m)
	}
	if added.LogIndex == 0 {
		t.Error("add did not print the log index")
	}
	// One public JWK is accepted and sent as a set; --data finds the
	// operator key.
	code, out, errb := sparr(t, nil, "member", "add", "--json", "--hub", hub.URL, "--data", hub.Data, "--id", "bank-b", "--name", "Bank B", "--roles", "check", "--jwks", memberKeyFile(t, true))
	if code != 0 {
		t.Fatalf("add bank-b: exit %d, %s", code, errb)
	}
	if ks, err := protocol.ParseKeySet(decodeMember(t, out).Member.JWKS); err != nil || ks.Len() != 1 {
		t.Errorf("bank-b's keys: %v", err)
	}

	t.Run("list", func(t *testing.T) {
		out := mustMember("list")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[0], "ID ") {
			t.Fatalf("list printed %d lines, want a header and 3 members:\n%s", len(lines), out)
		}
		for i, want := range []string{"bank-a", "bank-b", "operator"} {
			if f := strings.Fields(lines[i+1]); f[0] != want {
				t.Errorf("row %d is %q, want %s first", i+1, lines[i+1], want)
			}
		}
		if !strings.Contains(lines[1], "check,flag") || !strings.Contains(lines[1], "active") {
			t.Errorf("bank-a's row %q lacks its roles or status", lines[1])
		}
		var doc struct {
			Members []api.Member `json:"members"`
		}
		if err := json.Unmarshal([]byte(mustMember("list", "--json")), &doc); err != nil || len(doc.Members) != 3 {
			t.Errorf("list --json: %v, %d members", err, len(doc.Members))
		}
		// Each command reads its own variables: bench's --json is not
		// list's.
		code, out, errb := sparr(t, environ("SPARR_BENCH_JSON", "true"), append([]string{"member", "list"}, op...)...)
		if code != 0 || !strings.HasPrefix(out, "ID ") {
			t.Errorf("list with SPARR_BENCH_JSON=true: exit %d, %s\n%s; want the table", code, errb, out)
		}
		code, out, errb = sparr(t, environ("SPARR_MEMBER_LIST_JSON", "true"), append([]string{"member", "list"}, op...)...)
		if err := json.Unmarshal([]byte(out), &doc); code != 0 || err != nil {
			t.Errorf("list with SPARR_MEMBER_LIST_JSON=true: exit %d, %s, %v\n%s; want JSON", code, errb, err, out)
		}
	})

	t.Run("text", func(t *testing.T) {
		// Without --json, add and show print the member as text.
		keys := memberKeyFile(t, false)
		out := mustMember("add", "--id", "bank-t", "--name", "Bank T AB", "--roles", "check,flag", "--jwks", keys)
		ks, err := protocol.ParseKeySet(decodeMember(t, mustMember("show", "--json", "bank-t")).Member.JWKS)
		if err != nil || ks.Len() != 1 {
			t.Fatalf("bank-t's keys: %v", err)
		}
		kid := ks.Keys()[0].KeyID()
		fields := func(out string) map[string]string {
			t.Helper()
			if json.Valid([]byte(out)) {
				t.Fatalf("printed JSON without --json:\n%s", out)
			}
			f := map[string]string{}
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				k, v, _ := strings.Cut(l, "  ")
				f[k] = strings.TrimSpace(v)
			}
			return f
		}
		want := map[string]string{"ID": "bank-t", "NAME": "Bank T AB", "ROLES": "check,flag", "STATUS": "active", "KEYS": "inline, key ids " + kid, "QUOTAS": "default"}
		for _, doc := range []struct {
			cmd string
			out string
		}{{"add", out}, {"show", mustMember("show", "bank-t")}} {
			f := fields(doc.out)
			for k, v := range want {
				if f[k] != v {
					t.Errorf("%s printed %s %q, want %q:\n%s", doc.cmd, k, f[k], v, doc.out)
				}
			}
			if _, err := time.Parse(time.RFC3339, f["UPDATED"]); err != nil {
				t.Errorf("%s printed UPDATED %q: %v", doc.cmd, f["UPDATED"], err)
			}
			if _, ok := f["LOG INDEX"]; ok != (doc.cmd == "add") {
				t.Errorf("%s printed a LOG INDEX: %v, want it for add only:\n%s", doc.cmd, ok, doc.out)
			}
		}
		// Each command reads its own variables.
		code, out, errb := sparr(t, environ("SPARR_MEMBER_SHOW_JSON", "true"), append([]string{"member", "show", "bank-t"}, op...)...)
		if code != 0 || decodeMember(t, out).Member.ID != "bank-t" {
			t.Errorf("show with SPARR_MEMBER_SHOW_JSON=true: exit %d, %s", code, errb)
		}
	})

	t.Run("show and update", func(t *testing.T) {
		if m := decodeMember(t, mustMember("show", "--json", "bank-a")).Member; m.Name != "Bank A AB" {
			t.Errorf("show: name %q", m.Name)
		}
		// Flags may follow the id.
		upd := decodeMember(t, mustMember("update", "--json", "bank-a", "--name", "Bank A (publ)", "--roles", "check,flag,suspicion"))
		if m := upd.Member; m.Name != "Bank A (publ)" || len(m.Roles) != 3 {
			t.Errorf("update: %+v", m)
		}
		if m := decodeMember(t, mustMember("show", "--json", "bank-a")).Member; m.Name != "Bank A (publ)" {
			t.Errorf("show after update: name %q", m.Name)
		}
	})

	t.Run("quotas", func(t *testing.T) {
		added := decodeMember(t, mustMember("add", "--json", "--id", "bank-q", "--name", "Bank Q AB", "--roles", "check", "--jwks", memberKeyFile(t, false),
			"--tokens-per-second", "2.5", "--tokens-per-day", "200000", "--stored-bytes-per-day", "1073741824"))
		want := api.Quotas{TokensPerSecond: 2.5, TokensPerDay: 200000, StoredBytesPerDay: 1 << 30}
		if q := added.Member.Quotas; q == nil || *q != want {
			t.Errorf("add: quotas %+v, want %+v", q, want)
		}
		if q := decodeMember(t, mustMember("show", "--json", "bank-q")).Member.Quotas; q == nil || *q != want {
			t.Errorf("show: quotas %+v, want %+v", q, want)
		}
		row := func() string {
			t.Helper()
			for _, l := range strings.Split(mustMember("list"), "\n") {
				if strings.HasPrefix(l, "bank-q ") {
					return l
				}
			}
			t.Fatal("list has no row for bank-q")
			return ""
		}
		if r := row(); !strings.Contains(r, "tokens_per_second=2.5,tokens_per_day=200000,stored_bytes_per_day=1073741824") {
			t.Errorf("list row %q lacks bank-q's quotas", r)
		}
		// The quotas given replace the member's own whole.
		if q := decodeMember(t, mustMember("update", "--json", "bank-q", "--tokens-per-day", "300000")).Member.Quotas; q == nil || *q != (api.Quotas{TokensPerDay: 300000}) {
			t.Errorf("update --tokens-per-day: quotas %+v, want tokens_per_day 300000 alone", q)
		}
		// The hub's defaults for sparr serve in the environment are not a
		// member's quotas.
		code, out, errb := sparr(t, environ("SPARR_TOKENS_PER_DAY", "7", "SPARR_STORED_BYTES_PER_DAY", "7",
			"SPARR_MEMBER_UPDATE_TOKENS_PER_DAY", "7", "SPARR_MEMBER_UPDATE_DEFAULT_QUOTAS", "true", "SPARR_MEMBER_UPDATE_ROLES", "operator"),
			append([]string{"member", "update", "bank-q", "--json", "--name", "Bank Q (publ)"}, op...)...)
		if code != 0 {
			t.Fatalf("update --name: exit %d, %s", code, errb)
		}
		if q := decodeMember(t, out).Member.Quotas; q == nil || *q != (api.Quotas{TokensPerDay: 300000}) {
			t.Errorf("update --name with SPARR_TOKENS_PER_DAY set: quotas %+v, want them as they were", q)
		}
		if r := decodeMember(t, out).Member.Roles; slices.Contains(r, api.RoleOperator) {
			t.Errorf("update --name with SPARR_MEMBER_UPDATE_ROLES=operator set: roles %v, want them as they were", r)
		}
		if m := decodeMember(t, mustMember("update", "--json", "bank-q", "--default-quotas")).Member; m.Quotas != nil {
			t.Errorf("update --default-quotas: quotas %+v, want none of its own", m.Quotas)
		}
		if r := row(); !strings.Contains(r, " default ") {
			t.Errorf("list row %q, want its quotas the hub's default", r)
		}
		// A quota past the hub's bound is refused before it is sent,
		// naming the flag and the bound.
		code, _, stderr := member("update", "bank-q", "--stored-bytes-per-day", "2199023255552")
		wantError(t, code, stderr, 2, "--stored-bytes-per-day 2199023255552", "to 1099511627776")
		code, _, stderr = member("update", "bank-q", "--tokens-per-second", "-3")
		wantError(t, code, stderr, 2, "--tokens-per-second -3")
		if m := decodeMember(t, mustMember("show", "--json", "bank-q")).Member; m.Quotas != nil {
			t.Errorf("after refused updates: quotas %+v, want none of its own", m.Quotas)
		}
	})

	t.Run("suspend and resume", func(t *testing.T) {
		out := mustMember("suspend", "bank-b")
		if !strings.Contains(out, "bank-b is suspended") {
			t.Errorf("suspend printed %q", out)
		}
		if m := decodeMember(t, mustMember("show", "--json", "bank-b")).Member; m.Status != api.MemberSuspended {
			t.Errorf("after suspend, status %q", m.Status)
		}
		mustMember("resume", "bank-b")
		if m := decodeMember(t, mustMember("show", "--json", "bank-b")).Member; m.Status != api.MemberActive {
			t.Errorf("after resume, status %q", m.Status)
		}
	})

	t.Run("problems", func(t *testing.T) {
		code, _, stderr := member("show", "bank-z")
		wantError(t, code, stderr, 1, "Not found", `no member "bank-z"`, "request id ")
		code, _, stderr = member("add", "--id", "bank-a", "--name", "Again", "--roles", "check", "--jwks", memberKeyFile(t, false))
		wantError(t, code, stderr, 1, `member "bank-a" already exists`, "sparr member update bank-a", "request id ")
		if strings.Contains(stderr, "PATCH") {
			t.Errorf("stderr %q names the API's PATCH, not the command", stderr)
		}
		// Plain http key URLs are refused outside --dev.
		code, _, stderr = member("add", "--id", "bank-c", "--name", "Bank C", "--roles", "check", "--jwks-url", "http://keys.bank-c.example/jwks.json")
		wantError(t, code, stderr, 1, "jwks_url", "request id ")
		code, _, stderr = member("suspend", "operator")
		wantError(t, code, stderr, 1, "operator cannot be suspended")
	})

	t.Run("wrong operator key", func(t *testing.T) {
		other := t.TempDir()
		mustSparr(t, "init", "--data", other)
		code, _, stderr := sparr(t, nil, "member", "list", "--hub", hub.URL, "--data", other)
		wantError(t, code, stderr, 1, "Authentication required", "request id ")
	})

	t.Run("hub not running", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		code, _, stderr := sparr(t, nil, "member", "list", "--hub", "http://"+addr, "--data", hub.Data)
		wantError(t, code, stderr, 1, "cannot reach the hub", "--hub")
	})

	t.Run("not a hub", func(t *testing.T) {
		web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, "<html><body><h1>Welcome to our bank</h1></body></html>")
		}))
		defer web.Close()
		code, _, stderr := sparr(t, nil, "member", "list", "--hub", web.URL, "--data", hub.Data)
		wantError(t, code, stderr, 1, "answered 404 Not Found, not a Spärr hub's discovery document", "check --hub")
		if strings.Contains(stderr, "Welcome") {
			t.Errorf("the error repeats the page that answered: %s", stderr)
		}
	})
}

// memberIDs opens a copy of a data file and returns its member ids.
func memberIDs(t *testing.T, path string) []string {
	t.Helper()
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ms, err := st.Members()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	return ids
}

func TestBackup(t *testing.T) {
	t.Parallel()
	hub := newHub(t)
	mustSparr(t, "member", "add", "--hub", hub.URL, "--data", hub.Data, "--id", "bank-a", "--name", "Bank A", "--roles", "check", "--jwks", memberKeyFile(t, false))
	dir := t.TempDir()
	want := []string{"bank-a", "operator"}

	t.Run("from the running hub", func(t *testing.T) {
		out := filepath.Join(dir, "hot.db")
		code, printed, stderr := sparr(t, nil, "backup", "--hub", hub.URL, "--data", hub.Data, "--out", out)
		if code != 0 {
			t.Fatalf("backup: exit %d, %s", code, stderr)
		}
		if !strings.Contains(printed, "Wrote ") || !strings.Contains(printed, "To restore") {
			t.Errorf("backup printed %q", printed)
		}
		fi, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("backup: %d bytes", fi.Size()); !strings.Contains(stderr, want) || !strings.Contains(stderr, " copied in ") {
			t.Errorf("backup's progress %q, want a last line saying %q copied in its time", stderr, want)
		}
		if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("backup file: %v, mode %v; want 0600", err, fi.Mode())
		}
		if got := memberIDs(t, out); !slices.Equal(got, want) {
			t.Errorf("the copy holds members %q, want %q", got, want)
		}
		if left, _ := filepath.Glob(filepath.Join(dir, ".hot.db.tmp-*")); len(left) > 0 {
			t.Errorf("temporary files left behind: %q", left)
		}
	})

	t.Run("from a data dir in use", func(t *testing.T) {
		out := filepath.Join(dir, "locked.db")
		code, _, stderr := sparr(t, nil, "backup", "--data", hub.Data, "--out", out)
		wantError(t, code, stderr, 1, "in use by a running hub", "--hub")
		if _, err := os.Stat(out); err == nil {
			t.Error("a failed backup left a file")
		}
	})

	t.Run("never overwrites", func(t *testing.T) {
		out := filepath.Join(dir, "existing.db")
		if err := os.WriteFile(out, []byte("keep me"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, src := range [][]string{{"--hub", hub.URL, "--data", hub.Data}, {"--data", hub.Data}} {
			code, _, stderr := sparr(t, nil, append([]string{"backup", "--out", out}, src...)...)
			wantError(t, code, stderr, 1, "already exists", "never overwrites")
		}
		if b, _ := os.ReadFile(out); string(b) != "keep me" {
			t.Errorf("the existing file now holds %q", b)
		}
	})

	hub.stop(t)

	t.Run("from a stopped hub's data dir", func(t *testing.T) {
		out := filepath.Join(dir, "cold.db")
		code, _, stderr := sparr(t, environ("SPARR_DATA", hub.Data, "SPARR_BACKUP_OUT", out), "backup")
		if code != 0 {
			t.Fatalf("backup with SPARR_DATA and SPARR_BACKUP_OUT: exit %d, %s", code, stderr)
		}
		if got := memberIDs(t, out); !slices.Equal(got, want) {
			t.Errorf("the copy holds members %q, want %q", got, want)
		}
	})

	t.Run("restore", func(t *testing.T) {
		restored := t.TempDir()
		copyFile(t, filepath.Join(dir, "hot.db"), filepath.Join(restored, "hub.db"))
		keys, err := filepath.Glob(filepath.Join(hub.Data, "keys", "*"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(filepath.Join(restored, "keys"), 0o700); err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			copyFile(t, k, filepath.Join(restored, "keys", filepath.Base(k)))
		}
		h := startHub(t, restored)
		code, out, stderr := sparr(t, nil, "member", "show", "bank-a", "--json", "--hub", h.URL, "--data", restored)
		if code != 0 || decodeMember(t, out).Member.Name != "Bank A" {
			t.Errorf("show bank-a on the restored hub: exit %d, %s %s", code, out, stderr)
		}
	})

	t.Run("no data file", func(t *testing.T) {
		code, _, stderr := sparr(t, nil, "backup", "--data", t.TempDir(), "--out", filepath.Join(dir, "none.db"))
		wantError(t, code, stderr, 1, "no data file")
	})
}

func TestServe(t *testing.T) {
	t.Parallel()
	t.Run("locked data file", func(t *testing.T) {
		hub := newHub(t)
		code, _, stderr := sparr(t, nil, "serve", "--data", hub.Data, "--insecure-http", "--addr", "127.0.0.1:0", "--metrics-addr", "")
		wantError(t, code, stderr, 1, "another hub is using "+filepath.Join(hub.Data, "hub.db"))
	})

	t.Run("no keys", func(t *testing.T) {
		data := t.TempDir()
		code, _, stderr := sparr(t, nil, "serve", "--data", data, "--insecure-http", "--addr", "127.0.0.1:0", "--metrics-addr", "")
		wantError(t, code, stderr, 1, "no keys", "sparr init --data")
	})

	t.Run("dev hubs side by side", func(t *testing.T) {
		// Without --metrics-addr each --dev hub serves its metrics on a
		// free loopback port of its own, and says where.
		var hubs []*hubProcess
		for range 2 {
			data := t.TempDir()
			hubs = append(hubs, startServe(t, data, []string{"serve", "--dev", "--data", data, "--addr", "127.0.0.1:0"}))
		}
		if hubs[0].Metrics == "" || hubs[0].Metrics == hubs[1].Metrics {
			t.Fatalf("got metrics on %q and %q, want two addresses", hubs[0].Metrics, hubs[1].Metrics)
		}
		for _, h := range hubs {
			if !strings.HasPrefix(h.Metrics, "http://127.0.0.1:") {
				t.Errorf("got metrics on %s, want loopback", h.Metrics)
			}
			if status, body := get(t, h.Metrics); status != http.StatusOK || !strings.Contains(string(body), "sparr_build_info{") {
				t.Errorf("GET %s: %d\n%s", h.Metrics, status, body)
			}
		}
		// --metrics-addr, given, is kept.
		data := t.TempDir()
		h := startServe(t, data, []string{"serve", "--dev", "--data", data, "--addr", "127.0.0.1:0", "--metrics-addr", "off"})
		if h.Metrics != "" {
			t.Errorf("got metrics on %s with --metrics-addr off, want none", h.Metrics)
		}
	})

	t.Run("metrics apart from the API", func(t *testing.T) {
		hub := newHub(t, "--metrics-addr", "127.0.0.1:0", "--suspicion-legal-basis", "brottsdatalagen", "--max-thaw", "24h")
		if hub.Metrics == "" {
			t.Fatalf("serve did not print the metrics address:\n%s", hub.Stdout)
		}
		get(t, hub.URL+"/healthz")
		status, body := get(t, hub.Metrics)
		if status != http.StatusOK || !strings.Contains(string(body), `sparr_http_requests_total{method="GET",route="/healthz",status="200"} 1`) {
			t.Errorf("GET %s: %d\n%s", hub.Metrics, status, body)
		}
		if status, _ := get(t, hub.URL+"/metrics"); status != http.StatusNotFound {
			t.Errorf("GET /metrics on the API: %d, want 404", status)
		}
		cfg := configuration(t, hub.URL)
		if cfg["issuer"] != hub.URL || cfg["suspicions_enabled"] != true {
			t.Errorf("configuration: issuer %v, suspicions_enabled %v", cfg["issuer"], cfg["suspicions_enabled"])
		}
		if p, _ := cfg["policy"].(map[string]any); p["max_thaw_hours"] != 24.0 {
			t.Errorf("policy %v, want max_thaw_hours 24", p)
		}
		hub.stop(t)
		logs := hub.Stderr.String()
		for _, step := range []string{"hub listening", "shutting down", "HTTP servers stopped", "background jobs stopped", "store closed"} {
			if !strings.Contains(logs, `"msg":"`+step) {
				t.Errorf("the logs do not record %q:\n%s", step, logs)
			}
		}
		if strings.Contains(logs, "Bearer ") || strings.Contains(logs, "eyJ") {
			t.Errorf("the logs hold a token:\n%s", logs)
		}
	})

	t.Run("witnesses", func(t *testing.T) {
		w1, w2 := hubtest.StartWitness(t, "w1.example"), hubtest.StartWitness(t, "w2.example")
		hub := newHub(t, "--witness", w1.URL+" "+w1.Key, "--witness", w2.URL+"/ "+w2.Key)
		cfg := configuration(t, hub.URL)
		l, _ := cfg["log"].(map[string]any)
		ws, _ := l["witnesses"].([]any)
		if len(ws) != 2 || ws[0].(map[string]any)["public_key"] != w1.Key || ws[1].(map[string]any)["url"] != w2.URL {
			t.Errorf("got log %v in the configuration, want w1 and w2", l)
		}
		if l["monitoring"] != hub.URL+"/v1/log/" {
			t.Errorf("got monitoring prefix %v, want %s/v1/log/", l["monitoring"], hub.URL)
		}
	})

	t.Run("traces to a collector", func(t *testing.T) {
		collector := startCollector(t)
		hub := newHub(t, "--otlp-endpoint", collector.URL+"/v1/traces")
		get(t, hub.URL+"/healthz")
		hub.stop(t) // sends what is buffered
		if spans, services := collector.got(); !slices.Contains(spans, "GET /healthz") || !slices.Contains(services, "sparr-hub") {
			t.Errorf("the collector got spans %q of services %q, want GET /healthz of sparr-hub", spans, services)
		}
	})

	t.Run("TLS", func(t *testing.T) {
		cert, key, pool := selfSigned(t)
		hub := newHub(t, "--insecure-http=false", "--tls-cert", cert, "--tls-key", key)
		if !strings.HasPrefix(hub.URL, "https://127.0.0.1:") {
			t.Fatalf("issuer %s, want https://127.0.0.1:PORT", hub.URL)
		}
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		resp, err := client.Get(hub.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.TLS == nil {
			t.Errorf("GET /healthz over TLS: %d", resp.StatusCode)
		}
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their files and a pool that trusts the certificate.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sparr test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}
