package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPeerCommands registers two hubs with each other as their operators
// would: Sweden makes its key for Norway, Norway registers Sweden as a
// member with role peer, Sweden registers Norway with sparr peer add
// (reading Norway's token key from its discovery document), lists and
// removes it. A second registration is refused with a one-line message.
func TestPeerCommands(t *testing.T) {
	t.Parallel()
	seData, noData := filepath.Join(t.TempDir(), "se"), filepath.Join(t.TempDir(), "no")
	mustSparr(t, "init", "--data", seData, "--log-origin", "se.example/sparr-log")
	mustSparr(t, "init", "--data", noData, "--log-origin", "no.example/sparr-log")
	no := startHub(t, noData, "--jurisdiction", "NO", "--webhook-allow-http", "--webhook-allow", "127.0.0.0/8")
	se := startHub(t, seData, "--jurisdiction", "SE")

	pub := mustSparr(t, "peer", "key", "--data", seData, "hub-no")
	if fi, err := os.Stat(filepath.Join(seData, "keys", "peers", "hub-no.jwk")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("peer key file: %v, %v; want mode 0600", fi, err)
	}
	if strings.Contains(pub, `"d"`) {
		t.Fatal("sparr peer key printed the private key")
	}
	jwks := filepath.Join(t.TempDir(), "hub-se.jwks.json")
	if err := os.WriteFile(jwks, []byte(pub), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := sparr(t, nil, "peer", "key", "--data", seData, "hub-no")
	wantError(t, code, stderr, 1, "never overwritten")

	mustSparr(t, "member", "add", "--hub", no.URL, "--data", noData, "--id", "hub-se", "--name", "Spärr Sverige", "--roles", "peer", "--jwks", jwks)
	add := []string{"peer", "add", "--hub", se.URL, "--data", seData, "--id", "hub-no", "--jurisdiction", "NO", "--url", no.URL, "--member", "hub-se", "--identifier-types", "fnr"}
	out := mustSparr(t, add...)
	if !strings.Contains(out, "hub-no") || !strings.Contains(out, "LOG INDEX") || !strings.Contains(out, "api") {
		t.Errorf("peer add printed %q, want the peer, its source and the log index", out)
	}
	conf := configuration(t, se.URL)
	homes, _ := conf["home_tokens"].([]any)
	if len(homes) != 1 || homes[0].(map[string]any)["issuer"] != no.URL {
		t.Errorf("Swedish home_tokens %v, want Norway's", conf["home_tokens"])
	}
	if out := mustSparr(t, "peer", "list", "--hub", se.URL, "--data", seData); !strings.Contains(out, "hub-no") || !strings.Contains(out, "NO") {
		t.Errorf("peer list printed %q, want hub-no", out)
	}

	code, _, stderr = sparr(t, nil, add...)
	wantError(t, code, stderr, 1, "registered already")

	// Sweden subscribes to Norway's events, as its member there.
	if out := mustSparr(t, "peer", "subscribe", "hub-no", "--hub", se.URL, "--data", seData); !strings.Contains(out, "/v1/peering/events") {
		t.Errorf("peer subscribe printed %q", out)
	}
	code, _, stderr = sparr(t, nil, "peer", "subscribe", "hub-dk", "--hub", se.URL, "--data", seData)
	wantError(t, code, stderr, 1, "no peer")
	code, _, stderr = sparr(t, nil, "peer", "add", "--hub", se.URL, "--data", seData, "--id", "hub-dk", "--jurisdiction", "dk", "--url", no.URL, "--member", "hub-se")
	wantError(t, code, stderr, 2, "jurisdiction")

	if out := mustSparr(t, "peer", "remove", "hub-no", "--hub", se.URL, "--data", seData); !strings.Contains(out, "Removed peer hub-no") {
		t.Errorf("peer remove printed %q", out)
	}
	code, _, stderr = sparr(t, nil, "peer", "remove", "hub-no", "--hub", se.URL, "--data", seData)
	wantError(t, code, stderr, 1, "no peer")
}
