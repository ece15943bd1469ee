package store_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

// relay is a RelayEvent of a record of flag ref, delivered by hub-no.
func relay(id, ref string, typ protocol.EventType, at time.Time, erase ...string) *state.RelayEvent {
	c := &state.RelayEvent{Head: state.Head{At: at, Actor: "hub-no", Entry: state.Entry{Action: protocol.LogPeerEvent}}, Peer: "hub-no", Home: "hub-no",
		Record: &state.Record{ID: id, Type: typ, Subjects: []string{"fnr.1.AAAA"}, Ref: ref, IssuedAt: at, JWS: "jws-of-" + id, Via: []string{"via-of-" + id}}}
	if len(erase) > 0 {
		c.Erase = state.Erase{Records: erase, Basis: "consent-withdrawn"}
	}
	return c
}

// TestRelayedRecords: a relayed record is taken once; the relayed records
// of a flag not yet ended outlive the feed's retention, as the hub's own
// flags' records do, and are in the snapshot; the flag's end erases them.
func TestRelayedRecords(t *testing.T) {
	s := tempStore(t)
	if res := apply(t, s, relay("r-placed", "f-no", protocol.EventFlagPlaced, t0)); res.Duplicate || res.Seq == 0 {
		t.Fatalf("got %+v, want the record taken", res)
	}
	if res := apply(t, s, relay("r-placed", "f-no", protocol.EventFlagPlaced, t0)); !res.Duplicate {
		t.Errorf("got %+v for the same record again, want a duplicate", res)
	}
	apply(t, s, relay("r-other", "", protocol.EventSubjectErased, t0))
	later := t0.Add(48 * time.Hour)
	apply(t, s, &state.PruneFeed{Head: state.Head{At: later, Actor: "hub", Entry: state.Entry{Action: protocol.LogFeedPruned}}, Before: t0.Add(24 * time.Hour), Limit: 100})
	if _, err := s.Record("r-placed"); err != nil {
		t.Errorf("the relayed placement of an active flag was pruned with the feed: %v", err)
	}
	if _, err := s.Record("r-other"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a relayed record of no flag outlived the feed: %v", err)
	}
	var snap []string
	if _, err := s.Snapshot(&api.Member{ID: "bank-a", Roles: []api.Role{api.RoleCheck}}, func(_ uint64, r *state.Record) error { snap = append(snap, r.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(snap, []string{"r-placed"}) {
		t.Errorf("got snapshot %v, want the relayed placement", snap)
	}
	if ids, err := s.RelayedRecords("f-no"); err != nil || !slices.Equal(ids, []string{"r-placed"}) {
		t.Errorf("got relayed records %v (%v), want the placement", ids, err)
	}
	apply(t, s, relay("r-lifted", "f-no", protocol.EventFlagLifted, later, "r-placed"))
	if _, err := s.Record("r-placed"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the relayed placement outlived the lift: %v", err)
	}
	if ids, err := s.RelayedRecords("f-no"); err != nil || len(ids) != 0 {
		t.Errorf("got relayed records %v (%v) after the lift, want none", ids, err)
	}
	if seen, err := s.Relayed("r-placed"); err != nil || !seen {
		t.Errorf("the erased placement is forgotten as taken (%v), want a later copy dropped", err)
	}
}
