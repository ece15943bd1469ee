package replica

// The index on its own, event by event, down to what each event marks to
// be written. Events here are made up and not signed: the index trusts
// what the client has verified. TestErasure (push_test.go) erases a
// subject through a real hub.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

var t0 = time.Unix(1795255200, 0).UTC()

func tok(i int) protocol.Token {
	t := protocol.Token{Type: protocol.TypeEmail, Epoch: 1}
	copy(t.Value[:], fmt.Sprintf("token-%d", i))
	return t
}

// event makes a verified-looking event about toks.
func event(seq uint64, ev protocol.Event, toks ...protocol.Token) *client.Event {
	r := &protocol.Record{Issuer: "https://hub.example", IssuedAt: t0, ID: fmt.Sprintf("rec-%d", seq), Txn: "txn", Event: ev}
	if len(toks) > 0 {
		r.Subject = protocol.SubjectOf(toks...)
	}
	return &client.Event{Seq: seq, Type: ev.EventType(), JWS: fmt.Sprintf("jws-%d", seq), Record: r}
}

func placed(id string, expires time.Time) protocol.FlagPlaced {
	return protocol.FlagPlaced{FlagID: id, Kind: protocol.FlagKindStandard, Origin: "bank-a", ExpiresAt: protocol.NewNumericDate(expires), ConsentRef: "c-" + id}
}

func reported(id string, cat protocol.SuspicionCategory) protocol.SuspicionReported {
	return protocol.SuspicionReported{SuspicionID: id, Origin: "bank-a", Category: cat, ExpiresAt: protocol.NewNumericDate(t0.Add(48 * time.Hour))}
}

func lookup(s *state, t protocol.Token) holding {
	h, _ := s.lookup(t)
	return h
}

func applyAll(t *testing.T, s *state, events ...*client.Event) dirty {
	t.Helper()
	d := newDirty()
	for _, e := range events {
		if err := s.apply(e, d); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func TestStateErasure(t *testing.T) {
	s := newState()
	applyAll(t, s,
		event(1, placed("f1", t0.Add(time.Hour)), tok(1)),
		event(2, reported("s1", protocol.CategoryMoneyMule), tok(1), tok(2)),
		event(3, reported("s2", protocol.CategoryOther), tok(2)),
		event(4, placed("f2", t0.Add(time.Hour)), tok(3)),
	)
	if a := lookup(s, tok(2)).advice(t0.UnixNano()); a.Advice != api.AdviceReview || len(a.Suspicions) != 2 || a.Suspicions[0].ID != "s1" {
		t.Fatalf("token 2: %+v, want review with s1 and s2", a)
	}
	// Erasing token 1 takes its flag and the suspicion it shares with
	// token 2, which keeps its own.
	d := applyAll(t, s, event(5, protocol.SubjectErased{Origin: "bank-a", LegalBasis: "gdpr-art-17"}, tok(1)))
	if _, ok := s.lookup(tok(1)); ok || s.flags["f1"] != nil || s.susps["s1"] != nil {
		t.Errorf("token 1 is still held after its erasure")
	}
	if a := lookup(s, tok(2)).advice(t0.UnixNano()); len(a.Suspicions) != 1 || a.Suspicions[0].ID != "s2" {
		t.Errorf("token 2 after the erasure: %+v, want s2 only", a)
	}
	if !d.flags["f1"] || !d.susps["s1"] || d.flags["f2"] {
		t.Errorf("dirty %+v, want f1 and s1 only", d)
	}
	if s.flags["f2"] == nil {
		t.Errorf("another token's flag went too")
	}
}

func TestStateFlags(t *testing.T) {
	s := newState()
	applyAll(t, s, event(1, placed("f1", t0.Add(time.Hour)), tok(1)))
	held := s.flags["f1"]
	applyAll(t, s, event(2, protocol.FlagThawed{FlagID: "f1", Origin: "bank-b", ThawedFrom: protocol.NewNumericDate(t0), ThawedUntil: protocol.NewNumericDate(t0.Add(time.Minute))}, tok(1)))
	if len(held.Records) != 1 || !held.ThawFrom.IsZero() {
		t.Errorf("a flag handed out was changed by a later event")
	}
	if a := lookup(s, tok(1)).advice(t0.UnixNano()); a.Advice != api.AdviceNone || !a.Thawed || len(a.Flag.Records) != 2 {
		t.Errorf("thawed: %+v", a)
	}
	// A new flag on the token replaces one the replica still held.
	applyAll(t, s, event(3, placed("f2", t0.Add(time.Hour)), tok(1)))
	if s.flags["f1"] != nil || lookup(s, tok(1)).flag.ID != "f2" {
		t.Errorf("the old flag is still held beside the new one")
	}
	// A lift of a flag the replica never held still clears the token.
	applyAll(t, s, event(4, protocol.FlagLifted{FlagID: "f-unknown", Origin: "bank-a"}, tok(1)))
	if len(s.byToken) != 0 || len(s.flags) != 0 {
		t.Errorf("after the lift: %d tokens, %d flags, want none", len(s.byToken), len(s.flags))
	}
	// Changes to a flag the replica does not hold mean it missed its
	// placement.
	err := s.apply(event(5, protocol.FlagExtended{FlagID: "f9", Kind: protocol.FlagKindStandard, Origin: "bank-a", ExpiresAt: 1}, tok(9)), newDirty())
	if !errors.Is(err, errDiverged) {
		t.Errorf("extend of an unknown flag: %v, want errDiverged", err)
	}
}

func TestStateSuspicionRecords(t *testing.T) {
	s := newState()
	full := reported("s1", protocol.CategoryIdentityTheft)
	full.PoliceReport = &protocol.PoliceReport{Authority: "Polismyndigheten", CaseNumber: "1", Date: "2026-01-01"}
	applyAll(t, s, event(1, full, tok(1), tok(2)), event(2, reported("s1", protocol.CategoryIdentityTheft), tok(1), tok(2)))
	if sp := s.susps["s1"]; len(sp.Records) != 2 || len(lookup(s, tok(2)).susps) != 1 {
		t.Errorf("the reporter's full and hit records: %+v, want one suspicion with two records", sp)
	}
	if a := lookup(s, tok(1)).advice(t0.Add(49 * time.Hour).UnixNano()); a.Advice != api.AdviceNone || a.Suspicions != nil {
		t.Errorf("past its retention: %+v, want none", a)
	}
	applyAll(t, s, event(3, protocol.SuspicionExpired{SuspicionID: "s1", ExpiredAt: 1}, tok(1), tok(2)))
	if len(s.byToken) != 0 || len(s.susps) != 0 {
		t.Errorf("after expiry: %d tokens held", len(s.byToken))
	}
}

// unreachable returns the client of a hub the replica cannot reach:
// nothing listens on port 1 of loopback.
func unreachable(t testing.TB) *client.Client {
	t.Helper()
	key, err := protocol.GenerateSigningKey(protocol.EdDSA, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{HubURL: "http://127.0.0.1:1", MemberID: "bank-b", Key: key, Retry: client.Retry{Attempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestFileRoundTrip: what applyEvents writes, Open reads back.
func TestFileRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.db")
	now := func() time.Time { return t0 }
	r, err := Open(path, Config{Client: unreachable(t), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(context.Background()); err == nil {
		t.Error("sync with an unreachable hub: no error")
	}
	if err := r.applyEvents([]*client.Event{
		event(1, placed("f1", t0.Add(time.Hour)), tok(1)),
		event(2, reported("s1", protocol.CategoryOther), tok(1), tok(2)),
		event(3, placed("f2", t0.Add(time.Hour)), tok(2)),
		event(4, protocol.FlagLifted{FlagID: "f2", Origin: "bank-a"}, tok(2)),
	}, 7); err != nil {
		t.Fatal(err)
	}
	want := r.Lookup(tok(1))
	r.Close()
	r, err = Open(path, Config{Client: unreachable(t), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := r.Lookup(tok(1))
	if r.Seq() != 7 || got.Advice != want.Advice || got.Flag.ID != "f1" || len(got.Suspicions) != 1 || len(r.Records()) != 2 {
		t.Errorf("reopened: seq %d, %+v, %d records; want seq 7, %+v, 2 records", r.Seq(), got, len(r.Records()), want)
	}
	if _, err := Open(path, Config{Client: unreachable(t), LockTimeout: 50 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Errorf("second open: %v, want ErrLocked", err)
	}
}

// TestOpensLayoutOne: a file of layout 1, written when the hub still sent
// every member the hit records of other members' suspicions, opens with
// its flags and without any suspicion, and its next Sync starts again from
// a snapshot, which holds the member's own.
func TestOpensLayoutOne(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.db")
	now := func() time.Time { return t0 }
	r, err := Open(path, Config{Client: unreachable(t), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.applyEvents([]*client.Event{
		event(1, placed("f1", t0.Add(time.Hour)), tok(1)),
		event(2, reported("s1", protocol.CategoryOther), tok(1), tok(2)),
	}, 2); err != nil {
		t.Fatal(err)
	}
	// As an earlier version left it: layout 1, bootstrapped.
	err = r.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		if err := meta.Put([]byte("bootstrapped"), []byte{1}); err != nil {
			return err
		}
		return meta.Put([]byte("schema"), u64(1))
	})
	if err != nil {
		t.Fatal(err)
	}
	r.Close()

	var logs strings.Builder
	r, err = Open(path, Config{Client: unreachable(t), Now: now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Stats(); s.Flags != 1 || s.Suspicions != 0 || s.Seq != 2 {
		t.Errorf("opened: %+v, want the flag, no suspicion, seq 2", s)
	}
	if a := r.Lookup(tok(2)); a.Advice != api.AdviceNone {
		t.Errorf("the token of the dropped suspicion: %s, want none", a)
	}
	if err := r.Sync(context.Background()); err == nil || !strings.Contains(err.Error(), "bootstrap") {
		t.Errorf("the next sync: %v, want a bootstrap from a snapshot (which the unreachable hub fails)", err)
	}
	if !strings.Contains(logs.String(), "layout 1") {
		t.Errorf("the replica did not say it dropped the suspicions; it logged:\n%s", logs.String())
	}
	r.Close()
	r, err = Open(path, Config{Client: unreachable(t), Now: now})
	if err != nil {
		t.Fatalf("reopened at layout %d: %v", schema, err)
	}
	r.Close()
}
