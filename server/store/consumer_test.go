package store_test

import (
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server/state"
)

// openDisputeCmd opens dispute id of suspicion s-1 about tok, due a week
// and a month after at.
func openDisputeCmd(id, tok, jti string, at time.Time) *state.PutDispute {
	return &state.PutDispute{
		Head:       state.Head{At: at, Actor: "bank-a", Entry: state.Entry{Action: protocol.LogDisputeOpened, Salt: []byte("salt"), Details: []byte(`{"dispute_id":"` + id + `"}`), Subjects: []string{tok}}},
		Submission: &state.SubmissionRef{ID: jti, Hash: []byte(jti)},
		Records:    []*state.Record{{ID: "rec-" + id, Type: protocol.EventDisputeOpened, Subjects: []string{tok}, Audience: "bank-c", Ref: id, IssuedAt: at, JWS: "jws-of-" + id}},
		Dispute: &state.Dispute{ID: id, Version: 1, Subjects: []string{tok}, Suspicion: "s-1", Disputant: "bank-a", Respondent: "bank-c",
			Grounds: protocol.GroundsNotMe, Statement: "not me", Status: state.DisputeOpen, OpenedAt: at, AckDue: at.AddDate(0, 0, 7), ResolveDue: at.AddDate(0, 1, 0)},
	}
}

// TestOneOpenDisputePerTarget: a second dispute of a suspicion with one
// open conflicts and writes nothing; once the first is resolved, another
// may be opened.
func TestOneOpenDisputePerTarget(t *testing.T) {
	s := tempStore(t)
	apply(t, s, openDisputeCmd("d1", "tok-1", "j1", t0))
	before := dump(t, s)
	if res := apply(t, s, openDisputeCmd("d2", "tok-1", "j2", t0)); !res.Conflict {
		t.Fatalf("got %+v, want Conflict", res)
	}
	if after := dump(t, s); after != before {
		t.Error("a conflicting dispute changed the store")
	}
	due, err := s.DisputesDueBefore(t0.AddDate(0, 0, 8), 10)
	if err != nil || len(due) != 1 || due[0].ID != "d1" {
		t.Fatalf("got due %v (%v), want d1", due, err)
	}
	d, _ := s.Dispute("d1")
	done := *d
	done.Version, done.Status, done.ResolvedAt = 2, state.DisputeRejected, t0
	apply(t, s, &state.PutDispute{Head: state.Head{At: t0, Actor: "bank-c", Entry: state.Entry{Action: protocol.LogDisputeResolved}}, Dispute: &done})
	if due, _ := s.DisputesDueBefore(t0.AddDate(1, 0, 0), 10); len(due) != 0 {
		t.Errorf("got due %v after the resolution, want none", due)
	}
	if res := apply(t, s, openDisputeCmd("d3", "tok-1", "j3", t0)); res.Conflict {
		t.Error("a new dispute after the first was resolved conflicts")
	}
}
