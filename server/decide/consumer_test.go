package decide_test

import (
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/state"
)

func TestAddBusinessDays(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 12, d, 12, 0, 0, 0, time.UTC) } // 2026-12-07 is a Monday
	for _, tc := range []struct {
		from time.Time
		n    int
		want time.Time
	}{
		{day(7), 5, day(14)},  // Monday → next Monday
		{day(11), 5, day(18)}, // Friday → next Friday
		{day(12), 5, day(18)}, // Saturday → Friday after
		{day(13), 1, day(14)}, // Sunday → Monday
		{day(9), 0, day(9)},
		{day(11), 10, day(25)},
	} {
		if got := decide.AddBusinessDays(tc.from, tc.n); !got.Equal(tc.want) {
			t.Errorf("%s + %d business days: got %s, want %s", tc.from.Format("Mon 2006-01-02"), tc.n, got.Format("Mon 2006-01-02"), tc.want.Format("Mon 2006-01-02"))
		}
	}
}

func TestDisputeLapsedAt(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	open := state.Dispute{Status: state.DisputeOpen, AckDue: t0.Add(7 * 24 * time.Hour), ResolveDue: t0.Add(30 * 24 * time.Hour)}
	acked := open
	acked.Status = state.DisputeAcknowledged
	recorded := acked
	recorded.Lapsed = "acknowledge"
	rejected := recorded
	rejected.Status = state.DisputeRejected
	for _, tc := range []struct {
		name string
		d    state.Dispute
		at   time.Time
		want bool
	}{
		{"open, before acknowledge_by", open, open.AckDue.Add(-time.Second), false},
		{"open, at acknowledge_by", open, open.AckDue, false},
		{"open, past acknowledge_by", open, open.AckDue.Add(time.Second), true},
		{"acknowledged in time, past acknowledge_by", acked, open.AckDue.Add(time.Hour), false},
		{"acknowledged, past resolve_by", acked, open.ResolveDue.Add(time.Second), true},
		{"acknowledged late: the lapse stays until resolved", recorded, t0, true},
		{"resolved", rejected, open.ResolveDue.Add(time.Hour), false},
	} {
		if got := tc.d.LapsedAt(tc.at); got != tc.want {
			t.Errorf("%s: got lapsed %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestConsumerAuthWindow(t *testing.T) {
	d := &decide.Decider{Policy: decide.DefaultPolicy()}
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		at time.Time
		ok bool
	}{
		{now, true},
		{now.Add(-15 * time.Minute), true},
		{now.Add(-15*time.Minute - time.Second), false},
		{now.Add(30 * time.Second), true},
		{now.Add(2 * time.Minute), false},
	} {
		err := d.ConsumerAuth(&protocol.ConsumerAuth{Method: protocol.AuthBankID, AuthenticatedAt: protocol.NewNumericDate(tc.at), Level: protocol.LevelHigh, Reference: "r"}, now)
		if (err == nil) != tc.ok {
			t.Errorf("authenticated at %s, checked at %s: got %v, want ok %v", tc.at.Format(time.TimeOnly), now.Format(time.TimeOnly), err, tc.ok)
		}
	}
}
