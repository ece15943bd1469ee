package store_test

import (
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

// TestRecallTokenIndexFilledOnOpen: a data file written before recalls
// were indexed by payee token (its index bucket absent) gets the index
// when opened, so that an erasure finds the recalls it holds.
func TestRecallTokenIndexFilledOnOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hub.db")
	s, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const token = "iban.1.AAAA"
	rec := &state.Record{ID: "rec-rc-1", Type: protocol.EventRecallRequested, Subjects: []string{token}, Audience: "bank-b", IssuedAt: t0, JWS: "jws-of-rc-1"}
	cmd := &state.PutRecall{
		Head:   state.Head{At: t0, Actor: "bank-a", Entry: state.Entry{Action: protocol.LogRecallRequested}},
		Record: rec,
		Recall: &state.Recall{ID: "rc-1", Version: 1, From: "bank-a", To: "bank-b", Payee: token, Amount: protocol.Money{Minor: 100, Currency: "SEK"},
			RequestedAt: t0, Records: []string{rec.ID}},
	}
	if _, err := s.Apply(cmd); err != nil {
		t.Fatal(err)
	}
	if got, err := s.RecallsOf(token); err != nil || len(got) != 1 {
		t.Fatalf("got recalls %v, %v, want rc-1", got, err)
	}
	s.Close()

	// As an earlier version left the file: no index.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket([]byte("recall_token")) }); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s = open(t, path)
	got, err := s.RecallsOf(token)
	if err != nil || len(got) != 1 || got[0].ID != "rc-1" {
		t.Errorf("after reopening: got recalls %v, %v, want rc-1", got, err)
	}
}
