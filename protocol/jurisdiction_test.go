package protocol_test

import (
	"errors"
	"testing"

	"github.com/sparr-dev/sparr/protocol"
)

func TestJurisdiction(t *testing.T) {
	for typ, want := range map[protocol.IdentifierType]string{
		protocol.TypePersonalNumber: "SE", protocol.TypeNorwegianNumber: "NO", protocol.TypeDanishNumber: "DK",
		protocol.TypeFinnishNumber: "FI", protocol.TypeEmail: "", protocol.TypePhone: "", "ssn": "",
	} {
		if got := typ.Jurisdiction(); got != want {
			t.Errorf("%s: got %q, want %q", typ, got, want)
		}
	}
}

func TestCheckTokenRequest(t *testing.T) {
	key, err := protocol.GenerateTokenKey(3, nil)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := protocol.NewTokenClient(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	_, req, err := tc.Blind(protocol.TypeNorwegianNumber, "13097248022")
	if err != nil {
		t.Fatal(err)
	}
	if err := protocol.CheckTokenRequest(req, 3); err != nil {
		t.Fatalf("got %v for a request of the key's epoch, want nil", err)
	}
	for name, bad := range map[string]protocol.TokenRequest{
		"other epoch":   {Type: req.Type, Epoch: 4, Blinded: req.Blinded},
		"unknown type":  {Type: "dnr", Epoch: 3, Blinded: req.Blinded},
		"empty":         {Type: req.Type, Epoch: 3},
		"short element": {Type: req.Type, Epoch: 3, Blinded: []protocol.Base64URL{req.Blinded[0][:31]}},
		"identity":      {Type: req.Type, Epoch: 3, Blinded: []protocol.Base64URL{make([]byte, 32)}},
	} {
		if err := protocol.CheckTokenRequest(&bad, 3); !errors.Is(err, protocol.ErrInvalidTokenRequest) {
			t.Errorf("%s: got %v, want ErrInvalidTokenRequest", name, err)
		}
	}
}

// FuzzCheckTokenRequest checks arbitrary relayed batches: CheckTokenRequest
// never panics, and accepts a batch only if the hub's own key would.
func FuzzCheckTokenRequest(f *testing.F) {
	key, err := protocol.GenerateTokenKey(1, nil)
	if err != nil {
		f.Fatal(err)
	}
	tc, err := protocol.NewTokenClient(key.Public())
	if err != nil {
		f.Fatal(err)
	}
	_, req, err := tc.Blind(protocol.TypeNorwegianNumber, "13097248022")
	if err != nil {
		f.Fatal(err)
	}
	f.Add("fnr", uint32(1), []byte(req.Blinded[0]))
	f.Add("fnr", uint32(2), []byte(req.Blinded[0]))
	f.Add("pnr", uint32(1), make([]byte, 32))
	f.Add("x", uint32(1), []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, typ string, epoch uint32, elem []byte) {
		r := &protocol.TokenRequest{Type: protocol.IdentifierType(typ), Epoch: epoch, Blinded: []protocol.Base64URL{elem}}
		err := protocol.CheckTokenRequest(r, 1)
		_, berr := key.Batch(r)
		if (err == nil) != (berr == nil) {
			t.Fatalf("CheckTokenRequest: %v; the key's Batch: %v; want both to agree", err, berr)
		}
		if err != nil && !errors.Is(err, protocol.ErrInvalidTokenRequest) {
			t.Fatalf("got %v, want ErrInvalidTokenRequest", err)
		}
	})
}
