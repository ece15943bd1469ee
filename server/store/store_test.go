package store_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sparr-dev/sparr/federation/members"
	"github.com/sparr-dev/sparr/federation/webhook"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

func open(t testing.TB, path string) *store.Store {
	t.Helper()
	s, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func tempStore(t testing.TB) *store.Store {
	return open(t, filepath.Join(t.TempDir(), "hub.db"))
}

// alreadyCmd is a placement on token, which flag active protects, as the
// hub would decide it: answered with that flag.
func alreadyCmd(active, token, jti string, at time.Time) *state.PlaceFlag {
	h := sha256.Sum256([]byte(jti))
	return &state.PlaceFlag{
		Head: state.Head{At: at, Actor: "bank-a", Entry: state.Entry{Action: protocol.LogFlagAlreadyActive,
			Salt: []byte("salt-" + jti), Details: []byte(`{"flag_id":"` + active + `","subject":"` + token + `"}`), Subjects: []string{token}}},
		Submission: state.SubmissionRef{ID: jti, Hash: h[:]},
		Active:     active,
	}
}

// placeCmd is a command placing flag id on token at, as the hub would
// build it (the record's JWS is a stand-in: the store does not verify).
func placeCmd(id, token, jti string, at time.Time) *state.PlaceFlag {
	rec := &state.Record{ID: "rec-" + id, Type: protocol.EventFlagPlaced, Subjects: []string{token}, IssuedAt: at, JWS: "jws-of-" + id}
	h := sha256.Sum256([]byte(jti))
	return &state.PlaceFlag{
		Head: state.Head{At: at, Actor: "bank-a", Entry: state.Entry{Action: protocol.LogFlagPlaced,
			Salt: []byte("salt-" + id), Details: []byte(`{"flag_id":"` + id + `","subject":"` + token + `"}`), Subjects: []string{token}}},
		Submission: state.SubmissionRef{ID: jti, Hash: h[:]},
		Record:     rec,
		Flag: &state.Flag{ID: id, Version: 1, Subject: token, Kind: protocol.FlagKindStandard, Origin: "bank-a",
			Status: api.FlagActive, PlacedAt: at, ExpiresAt: at.AddDate(1, 0, 0), Records: []string{rec.ID}},
		Consent: []byte(`{"consent":"of ` + id + `"}`),
	}
}

// withRecord is a command that stores rec and queues its deliveries, as
// every command with a record does: a placement on a token of its own, of
// a flag that does not hold rec (rec.Ref is not its id), so that nothing
// but its deliveries keeps rec once its event has left the feed.
func withRecord(rec *state.Record) *state.PlaceFlag {
	c := placeCmd("flag-of-"+rec.ID, "tok-of-"+rec.ID, "jti-of-"+rec.ID, rec.IssuedAt)
	c.Record, c.Flag.Records = rec, []string{rec.ID}
	return c
}

// note is a command that only appends a log entry.
func note(at time.Time, actor string, action protocol.LogAction, e state.Entry) *state.Note {
	e.Action = action
	return &state.Note{Head: state.Head{At: at, Actor: actor, Entry: e}}
}

// member is the operator's command adding (create) or replacing m.
func member(m *api.Member, create bool) *state.PutMember {
	action := protocol.LogMemberUpdated
	if create {
		action = protocol.LogMemberAdded
	}
	return &state.PutMember{Head: state.Head{At: t0, Actor: "operator", Entry: state.Entry{Action: action}}, Member: m, Create: create}
}

func apply(t testing.TB, s *store.Store, c state.Command) *store.Result {
	t.Helper()
	r, err := s.Apply(c)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestApplyLeavesTheCommand: applying a command stores its record with the
// record's place in the feed and log, and leaves the command as it was
// decided: it encodes the same before and after.
func TestApplyLeavesTheCommand(t *testing.T) {
	s := tempStore(t)
	apply(t, s, placeCmd("f1", "tok-1", "j1", t0))
	c := placeCmd("f2", "tok-2", "j2", t0)
	before, err := state.Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, s, c)
	after, err := state.Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("applying changed the command:\nbefore %s\nafter  %s", before, after)
	}
	if r, err := s.Record("rec-f2"); err != nil || r.Seq != 2 || r.LogIndex != 1 {
		t.Errorf("stored record: %+v, %v; want seq 2, log index 1", r, err)
	}
}

func TestApplyWritesEverythingInOneCommand(t *testing.T) {
	s := tempStore(t)
	res := apply(t, s, placeCmd("f1", "tok-1", "j1", t0))
	if res.LogIndex != 0 || res.Seq != 1 || res.Existing != nil || res.Conflict {
		t.Fatalf("got %+v, want log index 0, seq 1", res)
	}
	f, err := s.FlagByToken("tok-1")
	if err != nil || f.ID != "f1" {
		t.Fatalf("FlagByToken: %v, %v", f, err)
	}
	if r, err := s.Record("rec-f1"); err != nil || r.Seq != 1 || r.LogIndex != 0 {
		t.Errorf("record: %+v, %v", r, err)
	}
	if _, err := s.Consent("f1"); err != nil {
		t.Errorf("consent: %v", err)
	}
	sub, err := s.Submission("bank-a", "j1")
	if err != nil || sub.Flag != "f1" || sub.Record != "rec-f1" || sub.LogIndex != 0 {
		t.Errorf("submission: %+v, %v", sub, err)
	}
	lines, _ := s.LogEntries(0, 10)
	if len(lines) != 1 {
		t.Fatalf("got %d log entries, want 1", len(lines))
	}
	e, err := protocol.ParseLogEntry(lines[0])
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.LogDetails(0)
	if err != nil || !bytes.Equal(e.Commitment, protocol.LogCommitment(d.Salt, d.Details)) {
		t.Errorf("log commitment does not match its details: %v", err)
	}
	if e.Member != "bank-a" || e.Action != "flag-placed" || e.Result != "ok" || !e.Time.Equal(t0) {
		t.Errorf("log entry %+v", e)
	}
	// The details are kept as the JSON they are: an auditor of the data
	// file finds the token in them with grep.
	var raw string
	s.Walk(func(b string, _, v []byte) error {
		if b == "log_details" {
			raw = string(v)
		}
		return nil
	})
	if !strings.Contains(raw, `"subject":"tok-1"`) {
		t.Errorf("log details kept as %s; want the details' JSON, searchable", raw)
	}
}

func TestSecondFlagOnATokenAnswersWithTheFirst(t *testing.T) {
	s := tempStore(t)
	apply(t, s, placeCmd("f1", "tok-1", "j1", t0))
	// Decided before f1 was placed, a new flag conflicts: decided again,
	// it is answered with f1.
	all := dump(t, s)
	if res := apply(t, s, placeCmd("f2", "tok-1", "j2", t0)); !res.Conflict {
		t.Fatalf("a new flag on a protected subject: got %+v, want a conflict", res)
	}
	if dump(t, s) != all {
		t.Error("the conflicting placement wrote something")
	}
	before := dump(t, s, "records", "flags", "consents", "events")
	res := apply(t, s, alreadyCmd("f1", "tok-1", "j2", t0))
	if res.Existing == nil || res.Existing.ID != "f1" {
		t.Fatalf("got %+v, want the existing flag f1", res)
	}
	if after := dump(t, s, "records", "flags", "consents", "events"); after != before {
		t.Errorf("the second placement wrote state:\n%s\nwant\n%s", after, before)
	}
	sub, _ := s.Submission("bank-a", "j2")
	if sub == nil || !sub.Existing || sub.Flag != "f1" {
		t.Errorf("submission j2 remembered as %+v, want existing flag f1", sub)
	}
	e := lastEntry(t, s)
	if e.Action != "flag-already-active" {
		t.Errorf("log action %q, want flag-already-active", e.Action)
	}
}

func TestIdempotencyOnSubmissionID(t *testing.T) {
	s := tempStore(t)
	first := apply(t, s, placeCmd("f1", "tok-1", "j1", t0))
	size, _ := s.LogSize()

	again := placeCmd("f9", "tok-9", "j1", t0) // same jti, same bytes (hash of "j1")
	res := apply(t, s, again)
	if res.Replayed == nil || res.Replayed.Flag != "f1" || res.Replayed.LogIndex != first.LogIndex {
		t.Errorf("replay: got %+v, want the first answer", res)
	}
	other := placeCmd("f8", "tok-8", "j1", t0)
	other.Submission.Hash = []byte("different")
	if res := apply(t, s, other); !res.SubmissionConflict {
		t.Errorf("reuse with other bytes: got %+v, want SubmissionConflict", res)
	}
	if n, _ := s.LogSize(); n != size {
		t.Errorf("log grew from %d to %d on replays", size, n)
	}
	if _, err := s.Flag("f9"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("replayed command stored its flag: %v", err)
	}
}

func TestVersionConflictWritesNothing(t *testing.T) {
	s := tempStore(t)
	apply(t, s, placeCmd("f1", "tok-1", "j1", t0))
	f, _ := s.Flag("f1")
	stale := *f
	stale.Version = 5 // planned against a version that is not the stored one
	before := dump(t, s)
	if res := apply(t, s, &state.ChangeFlag{Head: state.Head{At: t0, Actor: "bank-a", Entry: state.Entry{Action: protocol.LogFlagThawed}}, Flag: &stale}); !res.Conflict {
		t.Fatalf("got %+v, want Conflict", res)
	}
	if after := dump(t, s); after != before {
		t.Error("a conflicting command changed the store")
	}
}

func TestLiftKeepsIndexesAndErases(t *testing.T) {
	s := tempStore(t)
	apply(t, s, placeCmd("f1", "tok-1", "j1", t0))
	f, _ := s.Flag("f1")
	lift := &state.Record{ID: "rec-lift", Type: protocol.EventFlagLifted, Subjects: []string{"tok-1"}, IssuedAt: t0, JWS: "lift"}
	apply(t, s, &state.EndFlag{
		Head: state.Head{At: t0.Add(time.Minute), Actor: "bank-a", Entry: state.Entry{Action: protocol.LogFlagLifted}}, Record: lift,
		Flag:  &state.Flag{ID: "f1", Version: f.Version + 1, Status: api.FlagLifted, Records: []string{"rec-lift"}},
		Erase: state.Erase{Records: f.Records, Consent: "f1", Basis: "consent-withdrawn"},
	})
	if _, err := s.FlagByToken("tok-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("lifted flag still found by token: %v", err)
	}
	if due, _ := s.FlagsExpiringBefore(t0.AddDate(2, 0, 0), 10); len(due) != 0 {
		t.Errorf("lifted flag still due to expire: %v", due)
	}
	if _, err := s.Record("rec-f1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("placed record survived the lift: %v", err)
	}
	if _, err := s.LogDetails(0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("details of the placement survived the lift: %v", err)
	}
	// The lift's entry is the last: the tombstone naming the placement's
	// waits for the batch of its period, and then follows.
	if e := lastEntry(t, s); e.Action != protocol.LogFlagLifted {
		t.Errorf("last entry %+v, want the lift's", e)
	}
	publish(t, s, t0.Add(time.Hour))
	if e := lastEntry(t, s); e.Action != protocol.LogErased || attr(e, "index") != "0" || attr(e, "basis") != "consent-withdrawn" || e.Member != "hub" {
		t.Errorf("last entry %+v, want the hub's tombstone for entry 0", e)
	}
	if _, err := s.Consent("f1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("consent survived the lift: %v", err)
	}
	// A new flag may now be placed on the token.
	if res := apply(t, s, placeCmd("f2", "tok-1", "j2", t0.Add(time.Hour))); res.Existing != nil {
		t.Errorf("new flag after lift found %+v", res.Existing)
	}
}

// publish publishes the tombstones of every erasure made before before.
func publish(t testing.TB, s *store.Store, before time.Time) *store.Result {
	t.Helper()
	return apply(t, s, &state.PublishErasures{Head: state.Head{At: before, Actor: "hub", Entry: state.Entry{Action: protocol.LogErased}}, Before: before})
}

// expireCmd ends flag f at, as the hub's expiry job would.
func expireCmd(f *state.Flag, at time.Time) *state.EndFlag {
	rec := &state.Record{ID: "rec-expired-" + f.ID, Type: protocol.EventFlagExpired, Subjects: []string{f.Subject}, IssuedAt: at, JWS: "expired-" + f.ID}
	return &state.EndFlag{
		Head: state.Head{At: at, Actor: "hub", Entry: state.Entry{Action: protocol.LogFlagExpired,
			Salt: []byte("salt"), Details: []byte(`{"flag_id":"` + f.ID + `"}`)}},
		Record: rec,
		Flag:   &state.Flag{ID: f.ID, Version: f.Version + 1, Status: api.FlagExpired, Records: []string{rec.ID}, EndedAt: at},
		Erase:  state.Erase{Records: f.Records, Consent: f.ID, Basis: "flag-expired"},
	}
}

func TestLapsedFlagIsNotExisting(t *testing.T) {
	s := tempStore(t)
	first := placeCmd("f1", "tok-1", "j1", t0)
	first.Flag.ExpiresAt = t0.Add(time.Hour)
	apply(t, s, first)
	old, _ := s.Flag("f1")
	later := t0.Add(2 * time.Hour) // past f1's expiry; the expiry job has not run

	// Planned without ending f1: a conflict, with nothing written.
	before := dump(t, s)
	if res := apply(t, s, placeCmd("f2", "tok-1", "j2", later)); !res.Conflict || res.Existing != nil {
		t.Fatalf("got %+v, want Conflict and no Existing", res)
	}
	if after := dump(t, s); after != before {
		t.Error("a conflicting placement changed the store")
	}

	// Planned with f1's expiry: f1 ends and f2 is placed, in one command.
	cmd := placeCmd("f2", "tok-1", "j2", later)
	cmd.Lapsed = expireCmd(old, later)
	res := apply(t, s, cmd)
	if res.Conflict || res.Existing != nil || res.Seq == 0 {
		t.Fatalf("got %+v, want f2 placed", res)
	}
	if f, err := s.FlagByToken("tok-1"); err != nil || f.ID != "f2" {
		t.Errorf("got flag %+v (%v) on tok-1, want f2", f, err)
	}
	if f, _ := s.Flag("f1"); f.Status != api.FlagExpired {
		t.Errorf("got f1 %s, want expired", f.Status)
	}
	if due, _ := s.FlagsExpiringBefore(later, 10); len(due) != 0 {
		t.Errorf("got %d flags due to expire, want none: f1 ended", len(due))
	}
	if _, err := s.Record("rec-expired-f1"); err != nil {
		t.Errorf("got %v reading f1's expiry record, want it stored", err)
	}
	sub, _ := s.Submission("bank-a", "j2")
	if sub == nil || sub.Existing || sub.Flag != "f2" {
		t.Errorf("got submission j2 %+v, want flag f2, not existing", sub)
	}
	// The log: f1's expiry, f2's placement, and once published, a
	// tombstone for f1's placement.
	publish(t, s, later.Add(time.Hour))
	var actions []protocol.LogAction
	n, _ := s.LogSize()
	lines, _ := s.LogEntries(0, n)
	for _, l := range lines {
		e, _ := protocol.ParseLogEntry(l)
		actions = append(actions, e.Action)
	}
	if want := []protocol.LogAction{protocol.LogFlagPlaced, protocol.LogFlagExpired, protocol.LogFlagPlaced, protocol.LogErased}; !slices.Equal(actions, want) {
		t.Errorf("got log actions %q, want %q", actions, want)
	}
	if res.LogIndex != 2 {
		t.Errorf("got log index %d for the placement, want 2", res.LogIndex)
	}

	// A flag still active at the command's time is not ended by an expiry
	// planned with a placement: the placement conflicts, to be decided
	// again and answered with the flag.
	stale := placeCmd("f3", "tok-1", "j3", later)
	f2, _ := s.Flag("f2")
	stale.Lapsed = expireCmd(f2, later)
	if res := apply(t, s, stale); !res.Conflict {
		t.Fatalf("got %+v, want a conflict", res)
	}
	if f, _ := s.Flag("f2"); f.Status != api.FlagActive {
		t.Errorf("got f2 %s, want still active", f.Status)
	}
	// An answer with a flag that has lapsed since conflicts too.
	if res := apply(t, s, alreadyCmd("f2", "tok-1", "j4", f2.ExpiresAt)); !res.Conflict {
		t.Errorf("answered with a lapsed flag: got %+v, want a conflict", res)
	}
	if res := apply(t, s, alreadyCmd("f2", "tok-1", "j4", later)); res.Existing == nil || res.Existing.ID != "f2" {
		t.Errorf("answered with the active flag: got %+v, want the existing flag f2", res)
	}
}

// TestEraseReachesEveryEntryNamingTheSubject: the details of every entry
// indexed under a subject go with an erasure of it (of the listed actions
// only, when it lists them), their index rows too, and the entries with
// their commitments stay.
func TestEraseReachesEveryEntryNamingTheSubject(t *testing.T) {
	s := tempStore(t)
	apply(t, s, placeCmd("f1", "tok-1", "j1", t0))                                   // 0
	apply(t, s, note(t0, "bank-b", protocol.LogCheck, state.Entry{Salt: []byte("s"), // 1
		Details: []byte(`{"tokens":["tok-1","tok-2"]}`), Subjects: []string{"tok-1", "tok-2"}}))
	apply(t, s, alreadyCmd("f1", "tok-1", "j2", t0))                                             // 2: flag-already-active
	apply(t, s, note(t0, "bank-c", protocol.LogSuspicionReported, state.Entry{Salt: []byte("s"), // 3
		Details: []byte(`{"subjects":["tok-1"]}`), Subjects: []string{"tok-1"}}))
	apply(t, s, note(t0, "bank-b", protocol.LogCheck, state.Entry{Salt: []byte("s"), // 4
		Details: []byte(`{"tokens":["tok-2"]}`), Subjects: []string{"tok-2"}}))
	n, _ := s.LogSize()
	before, _ := s.LogEntries(0, n)

	f, _ := s.Flag("f1")
	lift := &state.Record{ID: "rec-lift", Type: protocol.EventFlagLifted, Subjects: []string{"tok-1"}, IssuedAt: t0, JWS: "lift"}
	res := apply(t, s, &state.EndFlag{
		Head: state.Head{At: t0, Actor: "bank-a", Entry: state.Entry{Action: protocol.LogFlagLifted}}, Record: lift,
		Flag: &state.Flag{ID: "f1", Version: f.Version + 1, Status: api.FlagLifted, Records: []string{"rec-lift"}},
		Erase: state.Erase{Records: f.Records, Consent: "f1", Subjects: []string{"tok-1"},
			Actions: []protocol.LogAction{protocol.LogFlagPlaced, protocol.LogFlagAlreadyActive, protocol.LogCheck}, Basis: "consent-withdrawn"},
	})
	if res.Erased != 3 {
		t.Errorf("got %d entries erased, want 3 (placement, check, already-active)", res.Erased)
	}
	for idx, want := range map[uint64]bool{0: false, 1: false, 2: false, 3: true, 4: true} {
		if _, err := s.LogDetails(idx); (err == nil) != want {
			t.Errorf("entry %d: got details kept %v, want %v", idx, err == nil, want)
		}
	}
	// What is left names tok-1 only in the suspicion's details and its
	// index row, and tok-2 only in the later check's.
	var left []string
	s.Walk(func(bucket string, k, v []byte) error {
		if (bucket == "log_details" || bucket == "log_subject") && (bytes.Contains(k, []byte("tok-")) || bytes.Contains(v, []byte("tok-"))) {
			left = append(left, fmt.Sprintf("%s/%d", bucket, binary.BigEndian.Uint64(k[len(k)-8:])))
		}
		return nil
	})
	if want := []string{"log_details/3", "log_details/4", "log_subject/3", "log_subject/4"}; !slices.Equal(left, want) {
		t.Errorf("got %q naming a token, want %q", left, want)
	}
	// The entries, and so their commitments, are as they were.
	after, _ := s.LogEntries(0, n)
	for i := range before {
		if !bytes.Equal(before[i], after[i]) {
			t.Errorf("entry %d changed: got %s, want %s", i, after[i], before[i])
		}
	}
}

func TestLogTimeNeverGoesBackwards(t *testing.T) {
	s := tempStore(t)
	apply(t, s, note(t0.Add(time.Second), "bank-a", protocol.LogCheck, state.Entry{}))
	apply(t, s, note(t0, "bank-b", protocol.LogCheck, state.Entry{})) // decided a moment earlier
	lines, _ := s.LogEntries(0, 2)
	a, _ := protocol.ParseLogEntry(lines[0])
	b, _ := protocol.ParseLogEntry(lines[1])
	if b.Time.Before(a.Time) {
		t.Errorf("entry 1 at %s is before entry 0 at %s", b.Time, a.Time)
	}
}

// TestGroupCommit applies many commands from many goroutines: all land,
// each exactly once, with distinct log indexes, in fewer transactions than
// commands.
func TestGroupCommit(t *testing.T) {
	s := tempStore(t)
	var mu sync.Mutex
	var txs, cmds int
	s.OnCommit(func(n int, _ time.Duration) {
		mu.Lock()
		txs++
		cmds += n
		mu.Unlock()
	})
	const n = 400
	var wg sync.WaitGroup
	indexes := make([]uint64, n)
	for i := range n {
		wg.Go(func() {
			res, err := s.Apply(placeCmd(fmt.Sprint("f", i), fmt.Sprint("tok-", i), fmt.Sprint("j", i), t0))
			if err != nil {
				t.Error(err)
				return
			}
			indexes[i] = res.LogIndex
		})
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for _, idx := range indexes {
		if seen[idx] {
			t.Fatalf("log index %d given twice", idx)
		}
		seen[idx] = true
	}
	if size, _ := s.LogSize(); size != n {
		t.Errorf("log size %d, want %d", size, n)
	}
	mu.Lock()
	defer mu.Unlock()
	if cmds != n || txs >= n {
		t.Errorf("%d commands in %d transactions; want %d commands in fewer transactions", cmds, txs, n)
	}
	t.Logf("%d commands in %d transactions", cmds, txs)
}

// TestDeterministic applies the same commands to two stores and expects
// the same contents: the property replication will rely on.
func TestDeterministic(t *testing.T) {
	a, b := tempStore(t), tempStore(t)
	for _, s := range []*store.Store{a, b} {
		for i := range 20 {
			apply(t, s, placeCmd(fmt.Sprint("f", i), fmt.Sprint("tok-", i%7), fmt.Sprint("j", i), t0.Add(time.Duration(i)*time.Second)))
		}
		m := &api.Member{ID: "bank-a", Name: "A", Roles: []api.Role{api.RoleFlag}, Status: api.MemberActive, CreatedAt: t0, UpdatedAt: t0}
		apply(t, s, member(m, true))
	}
	if da, db := dump(t, a), dump(t, b); da != db {
		t.Error("the same commands gave different stores")
	}
}

func TestMemberPreconditions(t *testing.T) {
	s := tempStore(t)
	m := &api.Member{ID: "bank-a", Name: "A", Roles: []api.Role{api.RoleFlag}, Status: api.MemberActive}
	if res := apply(t, s, member(m, false)); !res.Conflict {
		t.Error("updating a member that does not exist did not conflict")
	}
	apply(t, s, member(m, true))
	if res := apply(t, s, member(m, true)); !res.Conflict {
		t.Error("adding a member twice did not conflict")
	}
	got, err := s.Member(t.Context(), "bank-a")
	if err != nil || got.Name != "A" {
		t.Errorf("Member: %+v, %v", got, err)
	}
	if _, err := s.Member(t.Context(), "nobody"); !errors.Is(err, members.ErrUnknownMember) || !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown member: got %v, want ErrUnknownMember and ErrNotFound", err)
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hub.db")
	s, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		apply(t, s, placeCmd(fmt.Sprint("f", i), fmt.Sprint("tok-", i), fmt.Sprint("j", i), t0))
	}
	before := dump(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(placeCmd("x", "x", "x", t0)); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Apply after Close: got %v, want ErrClosed", err)
	}
	s2 := open(t, path)
	if after := dump(t, s2); after != before {
		t.Error("the store changed across close and open")
	}
	if res := apply(t, s2, placeCmd("f10", "tok-10", "j10", t0)); res.LogIndex != 10 || res.Seq != 11 {
		t.Errorf("after reopen: got log index %d seq %d, want 10 and 11", res.LogIndex, res.Seq)
	}
}

func TestSchemaVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hub.db")
	s, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Mark the file as written by a newer version.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), binary.BigEndian.AppendUint32(nil, store.SchemaVersion+1))
	})
	db.Close()
	_, err = store.Open(path, store.Options{})
	if !errors.Is(err, store.ErrSchemaTooNew) || !strings.Contains(err.Error(), "newer sparr") {
		t.Errorf("got %v, want ErrSchemaTooNew telling to run a newer sparr", err)
	}
}

func TestLockedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hub.db")
	open(t, path)
	if _, err := store.Open(path, store.Options{LockTimeout: 50 * time.Millisecond}); !errors.Is(err, store.ErrLocked) {
		t.Errorf("second open: got %v, want ErrLocked", err)
	}
	var buf bytes.Buffer
	if _, err := store.BackupFile(path, &buf); !errors.Is(err, store.ErrLocked) {
		t.Errorf("BackupFile of a file in use: got %v, want ErrLocked", err)
	}
}

func TestBackupRestores(t *testing.T) {
	dir := t.TempDir()
	s := open(t, filepath.Join(dir, "hub.db"))
	for i := range 5 {
		apply(t, s, placeCmd(fmt.Sprint("f", i), fmt.Sprint("tok-", i), fmt.Sprint("j", i), t0))
	}
	f, err := os.Create(filepath.Join(dir, "copy.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Backup(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	restored := open(t, filepath.Join(dir, "copy.db"))
	if a, b := dump(t, s), dump(t, restored); a != b {
		t.Error("the backup differs from the store")
	}
}

func dump(t testing.TB, s *store.Store, buckets ...string) string {
	t.Helper()
	var b strings.Builder
	err := s.Walk(func(bucket string, k, v []byte) error {
		if len(buckets) == 0 || slices.Contains(buckets, bucket) {
			fmt.Fprintf(&b, "%s %x %x\n", bucket, k, v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func attr(e *protocol.LogEntry, key string) string {
	v, _ := e.Attr(key)
	return v
}

func lastEntry(t testing.TB, s *store.Store) *protocol.LogEntry {
	t.Helper()
	n, _ := s.LogSize()
	lines, _ := s.LogEntries(n-1, n)
	e, err := protocol.ParseLogEntry(lines[0])
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// BenchmarkApply measures one durable command per call, from one and from
// many goroutines (group commit), beside a raw bbolt Update of the same
// number of bytes per transaction.
func BenchmarkApply(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		s := tempStore(b)
		i := 0
		for b.Loop() {
			i++
			apply(b, s, placeCmd(fmt.Sprint("f", i), fmt.Sprint("tok-", i), fmt.Sprint("j", i), t0))
		}
	})
	b.Run("parallel", func(b *testing.B) {
		s := tempStore(b)
		var mu sync.Mutex
		i := 0
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				mu.Lock()
				i++
				n := i
				mu.Unlock()
				apply(b, s, placeCmd(fmt.Sprint("f", n), fmt.Sprint("tok-", n), fmt.Sprint("j", n), t0))
			}
		})
	})
	b.Run("baseline-bbolt-serial", func(b *testing.B) {
		db, err := bolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err })
		val := bytes.Repeat([]byte("x"), 1500) // about the bytes one placement writes
		i := 0
		for b.Loop() {
			i++
			db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("b")).Put([]byte(fmt.Sprint(i)), val) })
		}
	})
}

// BenchmarkLogAppend measures one log-only command (its entry, the Merkle
// hashes it completes, in one durable transaction) beside a raw bbolt put
// of a line of the same length, serially so that each is one fsync.
func BenchmarkLogAppend(b *testing.B) {
	b.Run("store", func(b *testing.B) {
		s := tempStore(b)
		for b.Loop() {
			apply(b, s, note(t0, "bank-a", protocol.LogCheck,
				state.Entry{Attrs: []protocol.LogAttr{{Key: "purpose", Value: "payment"}, {Key: "tokens", Value: "1"}}}))
		}
	})
	b.Run("baseline-bbolt", func(b *testing.B) {
		db, err := bolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("log")); return err })
		line := bytes.Repeat([]byte("x"), 90)
		for b.Loop() {
			db.Update(func(tx *bolt.Tx) error {
				bk := tx.Bucket([]byte("log"))
				n, _ := bk.NextSequence()
				return bk.Put(binary.BigEndian.AppendUint64(nil, n), line)
			})
		}
	})
}

// BenchmarkProofs measures proof generation on a log of 100 000 entries.
func BenchmarkProofs(b *testing.B) {
	s := tempStore(b)
	var wg sync.WaitGroup
	for i := range 100_000 {
		wg.Go(func() {
			apply(b, s, note(t0, "bank-a", protocol.LogCheck, state.Entry{Attrs: []protocol.LogAttr{{Key: "n", Value: fmt.Sprint(i)}}}))
		})
		if i%1000 == 999 {
			wg.Wait()
		}
	}
	wg.Wait()
	b.Run("inclusion", func(b *testing.B) {
		i := uint64(0)
		for b.Loop() {
			i = (i + 7919) % 100_000
			if _, err := s.InclusionProof(i, 100_000); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("consistency", func(b *testing.B) {
		i := uint64(1)
		for b.Loop() {
			i = (i+7919)%99_999 + 1
			if _, err := s.ConsistencyProof(i, 100_000); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("tree-hash", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.TreeHash(100_000); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestDroppedQueueReleasesRecords: when a member's queue is dropped (its
// endpoint removed or gone), a record whose event has left the feed goes
// with the last delivery row that kept it, and only then: one still queued
// for another member, held by an active flag, or still in the feed stays.
func TestDroppedQueueReleasesRecords(t *testing.T) {
	s := tempStore(t)
	for _, id := range []string{"bank-b", "bank-c"} {
		apply(t, s, member(&api.Member{ID: id, Name: id, Roles: []api.Role{api.RoleCheck}, Status: api.MemberActive}, true))
		apply(t, s, &state.ChangeEndpoint{Head: state.Head{At: t0, Actor: id, Entry: state.Entry{Action: protocol.LogEndpointRegistered}}, Change: state.EndpointChange{
			Op: state.EndpointRegister, Member: id, URL: "http://127.0.0.1:9/" + id, Secret: &webhook.EndpointSecret{Secret: "whsec_" + id, CreatedAt: t0}}})
	}
	event := func(rec *state.Record) {
		t.Helper()
		if rec.Type == "" {
			rec.Type = protocol.EventFlagPlaced
		}
		rec.JWS = "jws-of-" + rec.ID
		apply(t, s, withRecord(rec))
	}
	old, recent := t0, t0.Add(48*time.Hour)
	event(&state.Record{ID: "rec-both", IssuedAt: old})                  // queued for bank-b and bank-c
	event(&state.Record{ID: "rec-b", Audience: "bank-b", IssuedAt: old}) // queued for bank-b only
	held := placeCmd("f-held", "tok-held", "jti-held", old)              // queued for bank-b only, held by its flag
	held.Record.Ref, held.Record.Audience = "f-held", "bank-b"
	apply(t, s, held)
	event(&state.Record{ID: "rec-recent", Audience: "bank-b", IssuedAt: recent}) // still in the feed

	res := apply(t, s, &state.PruneFeed{Head: state.Head{At: recent, Actor: "hub", Entry: state.Entry{Action: protocol.LogFeedPruned}}, Before: t0.Add(24 * time.Hour), Limit: 100})
	if res.Pruned != 3 {
		t.Fatalf("got %d events pruned, want the 3 old ones", res.Pruned)
	}
	exists := func(id string) bool {
		t.Helper()
		_, err := s.Record(id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	for _, id := range []string{"rec-both", "rec-b", "rec-recent", "rec-f-held"} {
		if !exists(id) {
			t.Errorf("record %s deleted by the pruning, want it kept while queued", id)
		}
	}

	apply(t, s, &state.ChangeEndpoint{Head: state.Head{At: recent, Actor: "bank-b", Entry: state.Entry{Action: protocol.LogEndpointRemoved}}, Change: state.EndpointChange{
		Op: state.EndpointRemove, Member: "bank-b", Reason: "removed by the member"}})
	if n, err := s.Backlog("bank-b"); err != nil || n != 0 {
		t.Errorf("got a backlog of %d (%v) after the removal, want 0", n, err)
	}
	for id, want := range map[string]bool{"rec-both": true, "rec-b": false, "rec-recent": true, "rec-f-held": true} {
		if got := exists(id); got != want {
			t.Errorf("after bank-b's queue was dropped: record %s kept %t, want %t", id, got, want)
		}
	}

	rows, err := s.Pending("bank-c", 10)
	if err != nil || len(rows) != 1 || rows[0].Record != "rec-both" {
		t.Fatalf("got bank-c's queue %+v (%v), want rec-both", rows, err)
	}
	if err := s.Delivered(rows[0], webhook.Attempt{At: recent, Status: 202, URL: "http://127.0.0.1:9/bank-c"}); err != nil {
		t.Fatal(err)
	}
	if exists("rec-both") {
		t.Error("record rec-both kept after its last delivery, want it deleted: its event left the feed")
	}
}

// TestEraseSubjectDeletesTheConsent: an erasure that names a flag's
// consent deletes it, with the records and details it names.
func TestEraseSubjectDeletesTheConsent(t *testing.T) {
	s := tempStore(t)
	apply(t, s, placeCmd("f1", "tok-1", "j1", t0))
	f, _ := s.Flag("f1")
	rec := &state.Record{ID: "rec-erased", Type: protocol.EventSubjectErased, Subjects: []string{"tok-1"}, IssuedAt: t0, JWS: "erased"}
	apply(t, s, &state.EraseSubject{
		Head: state.Head{At: t0, Actor: "operator", Entry: state.Entry{Action: protocol.LogSubjectErased}}, Records: []*state.Record{rec},
		Flag:  &state.Flag{ID: "f1", Version: f.Version + 1, Status: api.FlagErased},
		Erase: state.Erase{Records: f.Records, Consent: "f1", Subjects: []string{"tok-1"}, Basis: "gdpr-art-17"},
	})
	if _, err := s.Consent("f1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the consent survived the erasure: %v", err)
	}
	if _, err := s.FlagByToken("tok-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the erased flag is still found by its token: %v", err)
	}
}
