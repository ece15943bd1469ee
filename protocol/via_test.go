package protocol_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

func TestVia(t *testing.T) {
	ed, p256 := hubKeys(t)
	at := time.Date(2026, 12, 8, 2, 0, 0, 0, time.UTC)
	v := &protocol.Via{Issuer: "https://sparr.example.se", Hub: "hub-se", Record: "019aa5f0-8c00-7000-8000-000000000001", Hop: 1, IssuedAt: at}
	jws, err := protocol.SignVia(v, ed)
	if err != nil {
		t.Fatal(err)
	}
	got, err := protocol.VerifyVia(jws, keySet(t, ed))
	if err != nil || *got != *v {
		t.Fatalf("got %+v (%v), want %+v", got, err, v)
	}
	if _, err := protocol.VerifyVia(jws, keySet(t, p256)); !errors.Is(err, protocol.ErrUnknownKey) {
		t.Errorf("under another hub's keys: got %v, want unknown key", err)
	}
	parts := strings.Split(string(jws), ".")
	other, _ := protocol.SignVia(&protocol.Via{Issuer: v.Issuer, Hub: v.Hub, Record: v.Record, Hop: 2, IssuedAt: at}, ed)
	forged := parts[0] + "." + strings.Split(string(other), ".")[1] + "." + parts[2]
	if _, err := protocol.VerifyVia([]byte(forged), keySet(t, ed)); !errors.Is(err, protocol.ErrBadSignature) {
		t.Errorf("another hop under the same signature: got %v, want bad signature", err)
	}
	rec, err := protocol.SignRecord(&protocol.Record{Issuer: v.Issuer, IssuedAt: at, ID: v.Record, Txn: "t", Event: protocol.Verification{}}, ed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := protocol.VerifyVia(rec, keySet(t, ed)); !errors.Is(err, protocol.ErrWrongType) {
		t.Errorf("a record as a via entry: got %v, want wrong type", err)
	}
	for _, bad := range []protocol.Via{
		{Hub: "hub-se", Record: "r", Hop: 1, IssuedAt: at},
		{Issuer: "https://x", Hub: "Hub SE", Record: "r", Hop: 1, IssuedAt: at},
		{Issuer: "https://x", Hub: "hub-se", Record: "r", Hop: 0, IssuedAt: at},
		{Issuer: "https://x", Hub: "hub-se", Record: "r", Hop: protocol.HopLimit + 1, IssuedAt: at},
	} {
		if _, err := protocol.SignVia(&bad, ed); err == nil {
			t.Errorf("SignVia(%+v): got no error", bad)
		}
	}
	if got := protocol.SplitVia(" a.b.c , d.e.f"); !slices.Equal(got, []string{"a.b.c", "d.e.f"}) {
		t.Errorf("SplitVia: got %q", got)
	}
	if got := protocol.SplitVia(" "); got != nil {
		t.Errorf("SplitVia of nothing: got %q", got)
	}
}

func FuzzVerifyVia(f *testing.F) {
	ed, _ := hubKeys(f)
	ks := keySet(f, ed)
	jws, err := protocol.SignVia(&protocol.Via{Issuer: "https://sparr.example.se", Hub: "hub-se", Record: "r-1", Hop: 2, IssuedAt: time.Unix(1795255200, 0)}, ed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(jws)
	f.Add([]byte("a.b.c"))
	f.Add(jws[:len(jws)-3])
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := protocol.VerifyVia(b, ks)
		if err == nil && (v.Hop < 1 || v.Hop > protocol.HopLimit || v.Issuer == "") {
			t.Errorf("%q verified to %+v", b, v)
		}
		var ve *protocol.VerificationError
		if err != nil && !errors.As(err, &ve) {
			t.Errorf("%q: got %T %v, want a *VerificationError", b, err, err)
		}
	})
}
