package store_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

// lift ends flag id, erasing its records and the details of every entry
// naming token, at.
func lift(t *testing.T, s *store.Store, id, token string, at time.Time) {
	t.Helper()
	f, err := s.Flag(id)
	if err != nil {
		t.Fatal(err)
	}
	rec := &state.Record{ID: "lift-" + id, Type: protocol.EventFlagLifted, Subjects: []string{token}, IssuedAt: at, JWS: "lift"}
	apply(t, s, &state.EndFlag{
		Head: state.Head{At: at, Actor: "bank-a", Entry: state.Entry{Action: protocol.LogFlagLifted}}, Record: rec,
		Flag:  &state.Flag{ID: id, Version: f.Version + 1, Status: api.FlagLifted, Records: []string{rec.ID}},
		Erase: state.Erase{Records: f.Records, Consent: id, Subjects: []string{token}, Actions: []protocol.LogAction{protocol.LogFlagPlaced, protocol.LogCheck}, Basis: "consent-withdrawn"},
	})
}

func entries(t *testing.T, s *store.Store) []*protocol.LogEntry {
	t.Helper()
	n, _ := s.LogSize()
	lines, err := s.LogEntries(0, n)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*protocol.LogEntry, len(lines))
	for i, l := range lines {
		if out[i], err = protocol.ParseLogEntry(l); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestErasuresArePublishedInBatches: a lift erases at once, but its
// tombstones wait for the batch of the period, which mixes every erasure
// of the period in the order of the entries erased, so that no reader can
// tell which entries one lift erased.
func TestErasuresArePublishedInBatches(t *testing.T) {
	s := tempStore(t)
	check := func(at time.Time, toks ...string) {
		apply(t, s, note(at, "bank-b", protocol.LogCheck, state.Entry{Salt: []byte("s"), Details: []byte(`{"tokens":"…"}`), Subjects: toks}))
	}
	apply(t, s, placeCmd("f1", "tok-1", "j1", t0)) // 0
	apply(t, s, placeCmd("f2", "tok-2", "j2", t0)) // 1
	check(t0, "tok-1")                             // 2
	check(t0, "tok-2")                             // 3
	check(t0, "tok-1")                             // 4
	lift(t, s, "f1", "tok-1", t0.Add(time.Hour))   // 5, erases 0, 2, 4
	lift(t, s, "f2", "tok-2", t0.Add(2*time.Hour)) // 6, erases 1, 3
	late := t0.Add(25 * time.Hour)
	apply(t, s, placeCmd("f3", "tok-3", "j3", late)) // 7
	lift(t, s, "f3", "tok-3", late.Add(time.Minute)) // 8, erases 7: the next period's
	for _, e := range entries(t, s) {
		if e.Action == protocol.LogErased {
			t.Fatalf("tombstone %d published with its lift", e.Index)
		}
	}
	for _, idx := range []uint64{0, 1, 2, 3, 4, 7} {
		if _, err := s.LogDetails(idx); err == nil {
			t.Errorf("details of entry %d kept after the lift", idx)
		}
	}

	res := publish(t, s, t0.Add(24*time.Hour))
	if res.Erased != 5 {
		t.Errorf("published %d tombstones, want the period's 5", res.Erased)
	}
	var got []string
	for _, e := range entries(t, s)[9:] {
		if e.Action != protocol.LogErased || e.Member != "hub" || attr(e, "basis") != "consent-withdrawn" {
			t.Errorf("entry %d is %+v, want a tombstone", e.Index, e)
		}
		got = append(got, attr(e, "index"))
	}
	if want := []string{"0", "1", "2", "3", "4"}; !slices.Equal(got, want) {
		t.Errorf("tombstones for entries %v, want %v: every erasure of the period, by index, the two lifts mixed", got, want)
	}
	if res := publish(t, s, t0.Add(24*time.Hour)); res.Erased != 0 {
		t.Errorf("published %d tombstones again", res.Erased)
	}
	if res := publish(t, s, late.Add(24*time.Hour)); res.Erased != 1 {
		t.Errorf("published %d tombstones of the next period, want 1", res.Erased)
	}
}

// TestDetailsExpire: details older than the retention go, oldest first,
// with their rows in the subject index; the entries stay; the expiry is
// logged with its count; with nothing due, nothing is written.
func TestDetailsExpire(t *testing.T) {
	s := tempStore(t)
	for i := range 5 {
		apply(t, s, note(t0.Add(time.Duration(i)*time.Hour), "bank-b", protocol.LogCheck,
			state.Entry{Salt: []byte("s"), Details: []byte(`{"n":` + strconv.Itoa(i) + `}`), Subjects: []string{"tok-" + strconv.Itoa(i)}}))
	}
	expire := func(before time.Time) *store.Result {
		return apply(t, s, &state.ExpireDetails{Head: state.Head{At: t0.Add(10 * time.Hour), Actor: "hub",
			Entry: state.Entry{Action: protocol.LogDetailsExpired}}, Before: before, Limit: 100})
	}
	res := expire(t0.Add(2*time.Hour + time.Minute))
	if res.Erased != 3 {
		t.Fatalf("erased %d, want the 3 older than the cutoff", res.Erased)
	}
	for i := range uint64(5) {
		if _, err := s.LogDetails(i); (err == nil) != (i >= 3) {
			t.Errorf("entry %d: details kept %t, want %t", i, err == nil, i >= 3)
		}
	}
	if e := lastEntry(t, s); e.Action != protocol.LogDetailsExpired || attr(e, "count") != "3" {
		t.Errorf("last entry %+v, want details-expired of 3", e)
	}
	var left int
	s.Walk(func(b string, k, _ []byte) error {
		if b == "log_subject" {
			left++
		}
		return nil
	})
	if left != 2 {
		t.Errorf("%d rows left in the subject index, want 2", left)
	}
	size, _ := s.LogSize()
	if res := expire(t0.Add(2*time.Hour + time.Minute)); res.Erased != 0 {
		t.Errorf("erased %d again", res.Erased)
	}
	if n, _ := s.LogSize(); n != size {
		t.Error("an expiry with nothing due wrote an entry")
	}
	if res := publish(t, s, t0.Add(24*time.Hour)); res.Erased != 3 {
		t.Errorf("published %d tombstones, want 3 with basis retention-ended", res.Erased)
	} else if e := lastEntry(t, s); attr(e, "basis") != "retention-ended" {
		t.Errorf("tombstone %+v, want basis retention-ended", e)
	}
}

// TestReplaysAreForgotten: the outcome of a submission is kept while a
// repeat may come, and forgotten after.
func TestReplaysAreForgotten(t *testing.T) {
	s := tempStore(t)
	apply(t, s, placeCmd("f1", "tok-1", "j1", t0))
	apply(t, s, placeCmd("f2", "tok-2", "j2", t0.Add(2*time.Hour)))
	// Usage of the day before the cut is forgotten with the outcomes; the
	// day of the cut is still counting.
	for _, day := range []string{"2026-11-20", "2026-11-21"} {
		n := note(t0, "bank-b", protocol.LogCheck, state.Entry{})
		n.Quota = &state.Quota{Member: "bank-b", Day: day, Bytes: 10, Limit: 1000}
		apply(t, s, n)
	}
	apply(t, s, &state.PruneReplays{Before: t0.Add(time.Hour), Limit: 100})
	if _, stored, _ := s.Usage("bank-b", "2026-11-20"); stored != 0 {
		t.Errorf("the usage of the day before is still kept: %d bytes", stored)
	}
	if _, stored, _ := s.Usage("bank-b", "2026-11-21"); stored != 10 {
		t.Errorf("the usage of the day of the cut: %d bytes, want 10 (still counting)", stored)
	}
	if _, err := s.Submission("bank-a", "j1"); err == nil {
		t.Error("the old submission is still remembered")
	}
	if _, err := s.Submission("bank-a", "j2"); err != nil {
		t.Errorf("the recent submission was forgotten: %v", err)
	}
	var rows int
	s.Walk(func(b string, _, _ []byte) error {
		if b == "submission_times" {
			rows++
		}
		return nil
	})
	if rows != 1 {
		t.Errorf("%d rows in the index of submissions by time, want 1", rows)
	}
}

// TestQuotas: a command over its member's allowance of stored bytes writes
// nothing; a batch of tokens over the daily quota is logged as refused and
// not counted.
func TestQuotas(t *testing.T) {
	s := tempStore(t)
	charged := func(bytes, limit int64) *state.Note {
		n := note(t0, "bank-b", protocol.LogCheck, state.Entry{})
		n.Quota = &state.Quota{Member: "bank-b", Day: "2026-11-21", Bytes: bytes, Limit: limit}
		return n
	}
	if res := apply(t, s, charged(600, 1000)); res.QuotaExceeded {
		t.Fatal("the first command was refused")
	}
	before := dump(t, s)
	if res := apply(t, s, charged(600, 1000)); !res.QuotaExceeded {
		t.Fatal("a command over the allowance was applied")
	}
	if dump(t, s) != before {
		t.Error("a command over the allowance wrote something")
	}
	if _, stored, _ := s.Usage("bank-b", "2026-11-21"); stored != 600 {
		t.Errorf("stored %d bytes, want 600", stored)
	}

	// A command that writes nothing, a replayed submission, a jti reused
	// by other bytes or a conflict, is charged nothing.
	quota := func(c *state.PlaceFlag) *state.PlaceFlag {
		c.Quota = &state.Quota{Member: "bank-a", Day: "2026-11-21", Bytes: 100, Limit: 1000}
		return c
	}
	apply(t, s, quota(placeCmd("f1", "tok-1", "j1", t0)))
	stale := quota(placeCmd("f1", "tok-1", "j2", t0))
	stale.Flag.Version = 5
	reused := quota(placeCmd("f8", "tok-8", "j1", t0))
	reused.Submission.Hash = []byte("other bytes")
	for name, c := range map[string]state.Command{
		"a replay":   quota(placeCmd("f9", "tok-9", "j1", t0)),
		"a reuse":    reused,
		"a conflict": &state.ChangeFlag{Head: state.Head{At: t0, Actor: "bank-a", Quota: stale.Quota, Entry: state.Entry{Action: protocol.LogFlagThawed}}, Flag: stale.Flag},
	} {
		before := dump(t, s)
		if res := apply(t, s, c); res.Replayed == nil && !res.SubmissionConflict && !res.Conflict {
			t.Fatalf("%s: got %+v, want nothing written", name, res)
		}
		if dump(t, s) != before {
			t.Errorf("%s changed the store: charged to the allowance?", name)
		}
	}
	if _, stored, _ := s.Usage("bank-a", "2026-11-21"); stored != 100 {
		t.Errorf("stored %d bytes for bank-a, want 100: the first placement's only", stored)
	}
	// A replay is answered as one even when the allowance is spent: the
	// member retrying a stored placement learns it was stored.
	spent := quota(placeCmd("f9", "tok-9", "j1", t0))
	spent.Quota.Bytes = 2000
	if res := apply(t, s, spent); res.Replayed == nil || res.QuotaExceeded {
		t.Errorf("a replay with the allowance spent: got %+v, want it replayed, not refused for the quota", res)
	}
	tokens := func(count, limit int64) *store.Result {
		return apply(t, s, &state.EvaluateTokens{Head: state.Head{At: t0, Actor: "bank-b", Entry: state.Entry{Action: protocol.LogTokens}},
			Day: "2026-11-21", Count: count, Limit: limit})
	}
	if res := tokens(60, 100); res.QuotaExceeded {
		t.Fatal("a batch within the quota was refused")
	}
	if res := tokens(60, 100); !res.QuotaExceeded {
		t.Fatal("a batch over the quota was counted")
	}
	if e := lastEntry(t, s); e.Action != protocol.LogTokens || e.Result != "rejected:token-quota-exceeded" {
		t.Errorf("last entry %+v, want the refused batch logged", e)
	}
	if n, _, _ := s.Usage("bank-b", "2026-11-21"); n != 60 {
		t.Errorf("%d tokens counted, want 60", n)
	}
	if res := tokens(40, 100); res.QuotaExceeded {
		t.Error("a batch that fills the quota exactly was refused")
	}
}

// TestUpgradesVersion1: a data file of schema version 1 opens as version 2,
// its submissions indexed by time so that they can be forgotten.
func TestUpgradesVersion1(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "testdata", "hub-v1", "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "hub.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s := open(t, path)
	var subs, indexed int
	var schema []byte
	s.Walk(func(bucket string, k, v []byte) error {
		switch {
		case bucket == "submissions":
			subs++
		case bucket == "submission_times":
			indexed++
		case bucket == "meta" && string(k) == "schema":
			schema = v
		}
		return nil
	})
	if subs == 0 || indexed != subs {
		t.Errorf("%d submissions, %d indexed by time; want all of them", subs, indexed)
	}
	if !bytes.Equal(schema, binary.BigEndian.AppendUint32(nil, 2)) {
		t.Errorf("schema %x, want version 2", schema)
	}
	apply(t, s, &state.PruneReplays{Before: time.Now(), Limit: 1000})
	if n := count(t, s, "submissions"); n != 0 {
		t.Errorf("%d old submissions left after pruning, want none", n)
	}
}

func count(t *testing.T, s *store.Store, bucket string) int {
	t.Helper()
	n := 0
	s.Walk(func(b string, _, _ []byte) error {
		if b == bucket {
			n++
		}
		return nil
	})
	return n
}
