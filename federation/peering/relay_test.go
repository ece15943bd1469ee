package peering_test

import (
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
