package protocol_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// The verifiers take bytes from the network. For any input they must return
// either a complete, valid object or a *VerificationError; never panic, and
// never accept what no key here signed.

func checkRefusal(t *testing.T, err error) {
	t.Helper()
	var ve *protocol.VerificationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *VerificationError", err, err)
	}
	if ve.Err == nil || ve.Object == "" {
		t.Fatalf("incomplete VerificationError %+v", ve)
	}
}

func FuzzVerifyRecord(f *testing.F) {
	ed, p256 := hubKeys(f)
	keys := keySet(f, ed, p256)
	for _, r := range sampleRecords(f) {
		for _, k := range []*protocol.SigningKey{ed, p256} {
			signed, err := protocol.SignRecord(r, k)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(signed)
		}
	}
	f.Add([]byte("eyJhbGciOiJFZERTQSJ9.e30.AAAA"))
	// A header naming a member twice, the last value the valid one.
	claims := `{"iss":"https://hub.example","iat":1763719200,"jti":"j1","txn":"t1","events":{"urn:sparr:event:verification":{"state":"s"}}}`
	for _, h := range duplicateHeaders(ed.KeyID(), protocol.TypeRecord, "") {
		f.Add(signHeaderJSON(f, ed, h, claims))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := protocol.VerifyRecord(data, keys)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if r.Event == nil || r.ID == "" || r.Txn == "" || r.Issuer == "" {
			t.Fatalf("accepted an incomplete record %+v", r)
		}
		if typ := r.Event.EventType(); typ != protocol.EventVerification && typ != protocol.EventStreamVerification {
			if _, err := r.Subject.Tokens(); err != nil {
				t.Fatalf("accepted a record with a bad subject: %v", err)
			}
		}
	})
}

func FuzzVerifySubmission(f *testing.F) {
	a, b, keys := memberKeys(f)
	for i, req := range sampleRequests(f) {
		for _, m := range []struct {
			id  string
			key *protocol.SigningKey
		}{{"bank-a", a}, {"bank-b", b}} {
			signed, err := protocol.SignSubmission(&protocol.Submission{Issuer: m.id, Audience: hubIssuer, IssuedAt: vectorTime, ID: "j" + string(rune('a'+i)), Request: req}, m.key)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(signed)
		}
	}
	claims := fmt.Sprintf(`{"iss":"bank-a","aud":"https://hub.example","iat":%d,"jti":"j1","action":"flag-lift","request":{"flag_id":"f1"}}`, vectorTime.Unix())
	for _, h := range duplicateHeaders(a.KeyID(), protocol.TypeSubmission, "bank-a") {
		f.Add(signHeaderJSON(f, a, h, claims))
	}
	opts := submissionOptions()
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := protocol.VerifySubmission(ctx, data, keys, opts)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if s.Request == nil || s.ID == "" || s.Audience != hubIssuer || (s.Issuer != "bank-a" && s.Issuer != "bank-b") {
			t.Fatalf("accepted an incomplete submission %+v", s)
		}
	})
}

func FuzzVerifyBearer(f *testing.F) {
	a, b, keys := memberKeys(f)
	for _, k := range []struct {
		id  string
		key *protocol.SigningKey
	}{{"bank-a", a}, {"bank-b", b}} {
		tok, err := protocol.NewBearer(k.key, k.id, hubIssuer, vectorTime, time.Minute)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tok)
	}
	claims := fmt.Sprintf(`{"iss":"bank-a","sub":"bank-a","aud":"https://hub.example","iat":%d,"exp":%d}`, vectorTime.Unix(), vectorTime.Unix()+60)
	for _, h := range duplicateHeaders(a.KeyID(), protocol.TypeBearer, "bank-a") {
		f.Add(string(signHeaderJSON(f, a, h, claims)))
	}
	opts := protocol.BearerOptions{Audience: hubIssuer, Now: vectorTime}
	f.Fuzz(func(t *testing.T, token string) {
		b, err := protocol.VerifyBearer(ctx, token, keys, opts)
		if err != nil {
			checkRefusal(t, err)
			return
		}
		if b.Expiry.Sub(b.IssuedAt) > protocol.MaxBearerLifetime || !vectorTime.Before(b.Expiry.Add(protocol.DefaultSkew)) {
			t.Fatalf("accepted a bearer outside its lifetime rules: %+v", b)
		}
	})
}
