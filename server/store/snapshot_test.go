package store_test

import (
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

// extendCmd adds a record to active flag f, as an extension does.
func extendCmd(f *state.Flag, n int, at time.Time) *state.ChangeFlag {
	rec := &state.Record{ID: fmt.Sprintf("rec-ext%d-%s", n, f.ID), Type: protocol.EventFlagExtended, Subjects: []string{f.Subject}, Ref: f.ID, IssuedAt: at, JWS: "ext-" + f.ID}
	h := sha256.Sum256([]byte(rec.ID))
	next := *f
	next.Version++
	next.ExpiresAt = f.ExpiresAt.AddDate(1, 0, 0)
	next.Records = append(slices.Clone(f.Records), rec.ID)
	return &state.ChangeFlag{
		Head:       state.Head{At: at, Actor: "bank-a", Entry: state.Entry{Action: protocol.LogFlagExtended}},
		Submission: &state.SubmissionRef{ID: "jti-" + rec.ID, Hash: h[:]},
		Record:     rec, Flag: &next,
	}
}

// liftCmd lifts active flag f, erasing its records, as a lift does.
func liftCmd(f *state.Flag, at time.Time) *state.EndFlag {
	rec := &state.Record{ID: "rec-lift-" + f.ID, Type: protocol.EventFlagLifted, Subjects: []string{f.Subject}, Ref: f.ID, IssuedAt: at, JWS: "lift-" + f.ID}
	return &state.EndFlag{
		Head:   state.Head{At: at, Actor: "bank-a", Entry: state.Entry{Action: protocol.LogFlagLifted}},
		Record: rec,
		Flag:   &state.Flag{ID: f.ID, Version: f.Version + 1, Status: api.FlagLifted, Records: []string{rec.ID}, EndedAt: at},
		Erase:  state.Erase{Records: f.Records, Consent: f.ID, Basis: "consent-withdrawn"},
	}
}

// suspicionCmd reports suspicion id on token, expiring at expires, with
// its record for bank-a, its reporter, alone.
func suspicionCmd(id, token string, at, expires time.Time) *state.ReportSuspicion {
	full := &state.Record{ID: "rec-full-" + id, Type: protocol.EventSuspicionReported, Subjects: []string{token}, Audience: "bank-a", Ref: id, IssuedAt: at, JWS: "full-" + id}
	h := sha256.Sum256([]byte(id))
	return &state.ReportSuspicion{
		Head:       state.Head{At: at, Actor: "bank-a", Entry: state.Entry{Action: protocol.LogSuspicionReported}},
		Submission: state.SubmissionRef{ID: "jti-" + id, Hash: h[:]},
		Records:    []*state.Record{full},
		Suspicion: &state.Suspicion{ID: id, Version: 1, Subjects: []string{token}, Category: protocol.CategoryMoneyMule, Origin: "bank-a",
			Status: api.SuspicionActive, ReportedAt: at, ExpiresAt: expires, Records: []string{full.ID}},
	}
}

// retractCmd ends suspicion sp, erasing its records.
func retractCmd(sp *state.Suspicion, at time.Time) *state.EndSuspicion {
	rec := &state.Record{ID: "rec-retract-" + sp.ID, Type: protocol.EventSuspicionRetracted, Subjects: sp.Subjects, Audience: "bank-a", Ref: sp.ID, IssuedAt: at, JWS: "retract-" + sp.ID}
	end := *sp
	end.Version++
	end.Status, end.Records, end.EndedAt = api.SuspicionRetracted, []string{rec.ID}, at
	return &state.EndSuspicion{
		Head:   state.Head{At: at, Actor: "bank-a", Entry: state.Entry{Action: protocol.LogSuspicionRetracted}},
		Record: rec, Suspicion: &end,
		Erase: state.Erase{Records: sp.Records, Basis: "retracted"},
	}
}

// TestSnapshotInChunksWhileWriting takes a snapshot two index keys per read
// transaction while flags and suspicions are placed, extended, lifted and
// retracted between its chunks. fn runs with no read transaction open;
// the snapshot holds only records up to its seq, sees the writes made
// during the walk in the chunks after them (so no one transaction covered
// the walk), and together with the feed after seq it gives the member
// exactly the state after the writes.
func TestSnapshotInChunksWhileWriting(t *testing.T) {
	s, err := store.Open(filepath.Join(t.TempDir(), "hub.db"), store.Options{ScanChunk: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	at := t0
	tick := func() time.Time { at = at.Add(time.Second); return at }
	flag := func(id string) *state.Flag {
		t.Helper()
		f, err := s.Flag(id)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	for i := range 10 {
		apply(t, s, placeCmd(fmt.Sprintf("f%d", i), fmt.Sprintf("tok-%d", i), fmt.Sprintf("j%d", i), tick()))
	}
	apply(t, s, extendCmd(flag("f1"), 1, tick()))
	for i := range 4 {
		apply(t, s, suspicionCmd(fmt.Sprintf("s%d", i), fmt.Sprintf("tok-s%d", i), tick(), t0.AddDate(1, 0, i)))
	}

	bankA := &api.Member{ID: "bank-a", Roles: []api.Role{api.RoleFlag, api.RoleCheck, api.RoleSuspicion}}
	var got []*state.Record
	calls := 0
	seq, err := s.Snapshot(bankA, func(_ uint64, r *state.Record) error {
		if open := s.OpenReadTxs(); open != 0 {
			return fmt.Errorf("fn called with %d read transactions open, want 0", open)
		}
		got = append(got, r)
		calls++
		if calls == 1 { // the walk is at tok-0, in its first chunk
			apply(t, s, liftCmd(flag("f0"), tick()))                               // passed: its record is already out
			apply(t, s, liftCmd(flag("f8"), tick()))                               // ahead: never out
			apply(t, s, extendCmd(flag("f9"), 1, tick()))                          // ahead: its record after seq
			apply(t, s, placeCmd("f10", "tok-99", "j10", tick()))                  // ahead, placed after seq
			apply(t, s, placeCmd("f11", "tok-00", "j11", tick()))                  // behind
			apply(t, s, retractCmd(mustSuspicion(t, s, "s2"), tick()))             // ahead: never out
			apply(t, s, suspicionCmd("s4", "tok-s4", tick(), t0.AddDate(2, 0, 0))) // ahead, after seq
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	var ids []string
	for _, r := range got {
		if r.Seq > seq {
			t.Errorf("snapshot at seq %d holds record %s of seq %d", seq, r.ID, r.Seq)
		}
		ids = append(ids, r.ID)
	}
	want := []string{"rec-f0", "rec-f1", "rec-ext1-f1", "rec-f2", "rec-f3", "rec-f4", "rec-f5", "rec-f6", "rec-f7", "rec-f9",
		"rec-full-s0", "rec-full-s1", "rec-full-s3"}
	if !slices.Equal(ids, want) {
		t.Errorf("snapshot holds %v, want %v", ids, want)
	}

	// The member applies the snapshot, then the feed after seq: it ends
	// with what a snapshot taken now holds, deleting what the feed ends.
	held := map[string]*state.Record{}
	for _, r := range got {
		held[r.ID] = r
	}
	page, err := s.Events(bankA, seq, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range page.Records {
		switch r.Type {
		case protocol.EventFlagLifted, protocol.EventSuspicionRetracted:
			for id, h := range held {
				if h.Ref == r.Ref || (h.Ref == "" && slices.Equal(h.Subjects, r.Subjects)) {
					delete(held, id)
				}
			}
		default:
			held[r.ID] = r
		}
	}
	var now []string
	if _, err := s.Snapshot(bankA, func(_ uint64, r *state.Record) error { now = append(now, r.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	var have []string
	for id := range held {
		have = append(have, id)
	}
	slices.Sort(have)
	slices.Sort(now)
	if !slices.Equal(have, now) {
		t.Errorf("snapshot and feed give %v, want the state now, %v", have, now)
	}
}

func mustSuspicion(t *testing.T, s *store.Store, id string) *state.Suspicion {
	t.Helper()
	sp, err := s.Suspicion(id)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}
