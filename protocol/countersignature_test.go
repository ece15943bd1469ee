package protocol_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

const (
	relayIssuer = "https://sparr.example.se"
	homeIssuer  = "https://sparr.example.no"
)

// relayed returns bank-a's signed submission for the relaying hub, the
// relaying hub's key (as hub-se at the home hub), the home hub's resolver
// for it, and the countersignature over the submission.
func relayed(t testing.TB) (sub, cs []byte, hub *protocol.SigningKey, keys members, memberKey *protocol.SigningKey) {
	t.Helper()
	memberKey, _, _ = memberKeys(t)
	hub = ed25519Key(t, "sparr test vectors: hub-se peer key")
	keys = members{"hub-se": keySet(t, hub)}
	sub, err := protocol.SignSubmission(&protocol.Submission{Issuer: "bank-a", Audience: relayIssuer, IssuedAt: vectorTime, ID: "j-relayed",
		Request: protocol.LiftFlag{FlagID: "f1"}}, memberKey)
	if err != nil {
		t.Fatal(err)
	}
	cs = countersign(t, hub, "hub-se", sub, memberKey.Public(), "j-relayed")
	return sub, cs, hub, keys, memberKey
}

func countersign(t testing.TB, key *protocol.SigningKey, iss string, sub []byte, memberKey *protocol.PublicKey, jti string) []byte {
	t.Helper()
	sum := sha256.Sum256(sub)
	cs, err := protocol.SignCountersignature(&protocol.Countersignature{Issuer: iss, Audience: homeIssuer, IssuedAt: vectorTime, ID: jti,
		Member: "bank-a", Relay: relayIssuer, SubmissionHash: sum[:], MemberKey: memberKey}, key)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func countersignatureOptions() protocol.CountersignatureOptions {
	return protocol.CountersignatureOptions{Audience: homeIssuer, Now: vectorTime.Add(time.Second)}
}

// TestCountersignature verifies a relayed submission end to end, and
// refuses each way of getting it wrong, with the sentinel that says why.
func TestCountersignature(t *testing.T) {
	sub, cs, hub, keys, memberKey := relayed(t)
	got, err := protocol.VerifyCountersignature(ctx, cs, keys, countersignatureOptions())
	if err != nil {
		t.Fatal(err)
	}
	if got.Issuer != "hub-se" || got.Member != "bank-a" || got.ID != "j-relayed" || got.Relay != relayIssuer || got.MemberKey.KeyID() != memberKey.KeyID() {
		t.Fatalf("got %+v, want hub-se's countersignature for bank-a's j-relayed", got)
	}
	s, err := protocol.VerifyRelayed(ctx, got, sub, protocol.SubmissionOptions{Now: vectorTime.Add(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if s.Issuer != "bank-a" || s.Audience != relayIssuer || s.Request.Action() != protocol.ActionLiftFlag {
		t.Fatalf("got %+v, want bank-a's lift for the relaying hub", s)
	}

	other, err := protocol.SignSubmission(&protocol.Submission{Issuer: "bank-a", Audience: relayIssuer, IssuedAt: vectorTime, ID: "j-other",
		Request: protocol.LiftFlag{FlagID: "f2"}}, memberKey)
	if err != nil {
		t.Fatal(err)
	}
	stranger := ed25519Key(t, "sparr test vectors: a stranger")
	for _, tc := range []struct {
		name string
		cs   []byte
		opts protocol.CountersignatureOptions
		want error
	}{
		{"a stranger's key", countersign(t, stranger, "hub-se", sub, memberKey.Public(), "j-relayed"), countersignatureOptions(), protocol.ErrUnknownKey},
		{"the member's submission", sub, countersignatureOptions(), protocol.ErrWrongType},
		{"another audience", cs, protocol.CountersignatureOptions{Audience: "https://sparr.example.dk", Now: vectorTime}, protocol.ErrInvalidClaim},
		{"too old", cs, protocol.CountersignatureOptions{Audience: homeIssuer, Now: vectorTime.Add(time.Hour)}, protocol.ErrExpired},
		{"from the future", cs, protocol.CountersignatureOptions{Audience: homeIssuer, Now: vectorTime.Add(-time.Hour)}, protocol.ErrNotYetValid},
	} {
		_, err := protocol.VerifyCountersignature(ctx, tc.cs, keys, tc.opts)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	for _, tc := range []struct {
		name string
		cs   []byte
		sub  []byte
		want error
	}{
		{"other bytes", cs, other, protocol.ErrInvalidClaim},
		{"another jti", countersign(t, hub, "hub-se", sub, memberKey.Public(), "j-other"), sub, protocol.ErrInvalidClaim},
		{"another member key", countersign(t, hub, "hub-se", sub, stranger.Public(), "j-relayed"), sub, protocol.ErrUnknownKey},
	} {
		c, err := protocol.VerifyCountersignature(ctx, tc.cs, keys, countersignatureOptions())
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if _, err := protocol.VerifyRelayed(ctx, c, tc.sub, protocol.SubmissionOptions{Now: vectorTime}); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

// FuzzVerifyCountersignature: whatever the bytes, a countersignature is
// either refused with a *VerificationError or complete, and so is the
// submission it binds.
func FuzzVerifyCountersignature(f *testing.F) {
	sub, cs, hub, keys, memberKey := relayed(f)
	f.Add(cs, sub)
	f.Add(sub, cs)
	f.Add(countersign(f, hub, "hub-se", sub, memberKey.Public(), "j-other"), sub)
	claims := fmt.Sprintf(`{"iss":"hub-se","aud":%q,"iat":%d,"jti":"j1","member":"bank-a","relay":%q,"submission_sha256":"AAAA","member_key":{}}`,
		homeIssuer, vectorTime.Unix(), relayIssuer)
	for _, h := range duplicateHeaders(hub.KeyID(), protocol.TypeCountersignature, "hub-se") {
		f.Add(signHeaderJSON(f, hub, h, claims), sub)
	}
	opts := countersignatureOptions()
	f.Fuzz(func(t *testing.T, csData, subData []byte) {
		c, err := protocol.VerifyCountersignature(ctx, csData, keys, opts)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if c.Issuer != "hub-se" || c.ID == "" || c.Member == "" || c.MemberKey == nil || len(c.SubmissionHash) != sha256.Size {
			t.Fatalf("accepted an incomplete countersignature %+v", c)
		}
		s, err := protocol.VerifyRelayed(ctx, c, subData, protocol.SubmissionOptions{Now: opts.Now})
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if s.ID != c.ID || s.Issuer != c.Member || s.Audience != c.Relay {
			t.Fatalf("accepted a submission %+v that the countersignature %+v does not bind", s, c)
		}
	})
}
