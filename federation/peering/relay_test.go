package peering_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sparr-dev/sparr/federation/peering"
	"github.com/sparr-dev/sparr/protocol"
)

func TestPeerCheck(t *testing.T) {
	key, err := protocol.GenerateSigningKey(protocol.EdDSA, nil)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := protocol.GenerateTokenKey(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	good := func() *peering.Peer {
		return &peering.Peer{ID: "hub-no", Jurisdiction: "NO", URL: "https://hub.example.no", Member: "hub-se", Key: key, Token: tk.Public()}
	}
	if err := good().Check(); err != nil {
		t.Fatalf("got %v for a complete registration, want nil", err)
	}
	if got := good().Types(); len(got) != 1 || got[0] != protocol.TypeNorwegianNumber {
		t.Errorf("got types %v, want [fnr]", got)
	}
	tests := []struct {
		name   string
		change func(*peering.Peer)
		want   string
	}{
		{"no id", func(p *peering.Peer) { p.ID = "" }, "no id"},
		{"lower-case jurisdiction", func(p *peering.Peer) { p.Jurisdiction = "no" }, "jurisdiction"},
		{"long jurisdiction", func(p *peering.Peer) { p.Jurisdiction = "NOR" }, "jurisdiction"},
		{"URL without scheme", func(p *peering.Peer) { p.URL = "hub.example.no" }, "URL"},
		{"no member", func(p *peering.Peer) { p.Member = "" }, "member"},
		{"no key", func(p *peering.Peer) { p.Key = nil }, "signing key"},
		{"no token key", func(p *peering.Peer) { p.Token = protocol.TokenPublicKey{} }, "token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := good()
			tt.change(p)
			err := p.Check()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error about %s", err, tt.want)
			}
		})
	}
}

// peersFile returns a peers file with one valid peer, and its key.
func peersFile(tb testing.TB) ([]byte, []byte) {
	key, err := protocol.GenerateSigningKey(protocol.EdDSA, nil)
	if err != nil {
		tb.Fatal(err)
	}
	jwk, err := key.MarshalPrivateJWK()
	if err != nil {
		tb.Fatal(err)
	}
	tk, err := protocol.GenerateTokenKey(1, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tok, err := json.Marshal(tk.Public())
	if err != nil {
		tb.Fatal(err)
	}
	return []byte(`[{"id":"hub-no","jurisdiction":"NO","url":"https://sparr.example.no","member":"hub-se","key_file":"no.jwk","token":` + string(tok) + `}]`), jwk
}

func TestDecodePeers(t *testing.T) {
	file, jwk := peersFile(t)
	read := func(name string) ([]byte, error) {
		if name != "no.jwk" {
			return nil, errors.New("no such file")
		}
		return jwk, nil
	}
	peers, err := peering.DecodePeers(file, read)
	if err != nil {
		t.Fatal(err)
	}
	if len(peers) != 1 || peers[0].ID != "hub-no" || peers[0].Key == nil || peers[0].Token.Epoch != 1 {
		t.Fatalf("got %+v, want hub-no with its key and token key", peers)
	}
	withPolicy := strings.Replace(string(file), `"id"`, `"policy":{"identifier_types":["fnr"],"suspicions_legal_basis":"agreement"},"id"`, 1)
	if peers, err := peering.DecodePeers([]byte(withPolicy), read); err != nil || !peers[0].Policy.Suspicions() || peers[0].Policy.AllowsType("pnr") {
		t.Fatalf("policy: got %+v, %v; want fnr only with suspicions", peers, err)
	}
	for name, bad := range map[string]string{
		"unknown field":     strings.Replace(string(file), `"id"`, `"peer_id":"x","id"`, 1),
		"two values":        string(file) + "[]",
		"not an array":      `{}`,
		"missing key file":  strings.Replace(string(file), `"no.jwk"`, `"missing.jwk"`, 1),
		"no key file":       strings.Replace(string(file), `"key_file":"no.jwk",`, ``, 1),
		"bad jurisdiction":  strings.Replace(string(file), `"NO"`, `"Norway"`, 1),
		"bad policy":        strings.Replace(string(file), `"id"`, `"policy":{"identifier_types":["ssn"]},"id"`, 1),
		"same jurisdiction": "[" + strings.Trim(string(file), "[]") + "," + strings.Trim(string(file), "[]") + "]",
	} {
		if _, err := peering.DecodePeers([]byte(bad), read); err == nil {
			t.Errorf("%s: got no error, want one", name)
		}
	}
}

func FuzzDecodePeers(f *testing.F) {
	file, jwk := peersFile(f)
	f.Add(file)
	f.Add([]byte(`[]`))
	f.Add([]byte(`[{"id":"x"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		peers, err := peering.DecodePeers(data, func(string) ([]byte, error) { return jwk, nil })
		if err != nil {
			return
		}
		for _, p := range peers {
			if err := p.Check(); err != nil {
				t.Fatalf("decoded a peer that fails Check: %v", err)
			}
		}
	})
}
