package client_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
)

// FuzzVerifyAccessReport: whatever bytes are offered as an access report,
// the verifier either returns a report about the subject, signed by the
// hub, or a *RecordError; it never panics, and never accepts another
// event type or subject.
func FuzzVerifyAccessReport(f *testing.F) {
	key, err := protocol.GenerateSigningKey(protocol.EdDSA, nil)
	if err != nil {
		f.Fatal(err)
	}
	keys, err := protocol.NewKeySet(key.Public())
	if err != nil {
		f.Fatal(err)
	}
	subject := protocol.Token{Type: protocol.TypePersonalNumber, Epoch: 1, Value: [protocol.TokenSize]byte{1, 2, 3}}
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for _, ev := range []protocol.Event{
		protocol.AccessReport{RequestedBy: "bank-a", ConsumerAuth: protocol.ConsumerAuth{Method: protocol.AuthBankID, AuthenticatedAt: protocol.NewNumericDate(at), Level: protocol.LevelHigh, Reference: "r"},
			FlagRecords: []string{}, Suspicions: []protocol.SuspicionEntry{}, Disputes: []protocol.DisputeEntry{},
			Accesses: []protocol.AccessEntry{{At: protocol.NewNumericDate(at), Action: "check", Member: "bank-b", Purpose: "payment"}}},
		protocol.FlagLifted{FlagID: "f-1", Origin: "bank-a"},
	} {
		jws, err := protocol.SignRecord(&protocol.Record{Issuer: "https://hub.example", IssuedAt: at, ID: "r-1", Txn: "t-1", Subject: protocol.OpaqueSubject(subject), Event: ev}, key)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(jws)
	}
	f.Add([]byte("eyJhbGciOiJFZERTQSJ9.e30.AAAA"))
	f.Fuzz(func(t *testing.T, jws []byte) {
		rec, rep, err := client.VerifyAccessReport(jws, keys, subject)
		if err != nil {
			var re *client.RecordError
			if !errors.As(err, &re) {
				t.Fatalf("got %T %v, want a *RecordError", err, err)
			}
			return
		}
		if rec.Event.EventType() != protocol.EventAccessReport || rep == nil {
			t.Fatalf("accepted a %s record as an access report", rec.Event.EventType())
		}
		if toks, _ := rec.Subject.Tokens(); len(toks) == 0 {
			t.Fatal("accepted a report without a subject")
		}
	})
}
