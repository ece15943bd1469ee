package peering

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/sparr-dev/sparr/protocol"
)

// A peerEntry is one peer in a peers file: a [Peer] with its signing key
// named by file rather than held.
type peerEntry struct {
	ID           string                  `json:"id"`
	Jurisdiction string                  `json:"jurisdiction"`
	URL          string                  `json:"url"`
	Member       string                  `json:"member"`
	KeyFile      string                  `json:"key_file"`
	Token        protocol.TokenPublicKey `json:"token"`
	Policy       Policy                  `json:"policy"`
}

// DecodePeers reads a peers file, the JSON array an operator keeps beside
// the hub's data:
//
//	[{"id": "hub-no", "jurisdiction": "NO", "url": "https://sparr.example.no",
//	  "member": "hub-se", "key_file": "hub-no.key.jwk",
//	  "token": {"suite": "ristretto255-SHA512", "epoch": 1, "public_key": "…"},
//	  "policy": {"identifier_types": ["fnr"], "suspicions_legal_basis": ""}}]
//
// readKey returns the private JWK a key_file names (sparr serve reads it
// relative to the peers file). Unknown fields are refused, and every peer
// must pass [Peer.Check]; jurisdictions must differ.
func DecodePeers(data []byte, readKey func(name string) ([]byte, error)) ([]*Peer, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var entries []peerEntry
	if err := dec.Decode(&entries); err != nil {
		return nil, fmt.Errorf("peers file: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("peers file: more than one JSON value")
	}
	seen := map[string]bool{}
	peers := make([]*Peer, 0, len(entries))
	for i, e := range entries {
		if e.KeyFile == "" {
			return nil, fmt.Errorf("peers file: peer [%d]: no key_file", i)
		}
		b, err := readKey(e.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("peers file: peer [%d]: key_file: %w", i, err)
		}
		key, err := protocol.ParseSigningKey(b)
		if err != nil {
			return nil, fmt.Errorf("peers file: peer [%d]: key_file: %w", i, err)
		}
		p := &Peer{ID: e.ID, Jurisdiction: e.Jurisdiction, URL: e.URL, Member: e.Member, Key: key, Token: e.Token, Policy: e.Policy}
		if err := p.Check(); err != nil {
			return nil, fmt.Errorf("peers file: peer [%d]: %w", i, err)
		}
		if seen[p.Jurisdiction] {
			return nil, fmt.Errorf("peers file: peer [%d]: a second peer for jurisdiction %s", i, p.Jurisdiction)
		}
		seen[p.Jurisdiction] = true
		peers = append(peers, p)
	}
	return peers, nil
}
