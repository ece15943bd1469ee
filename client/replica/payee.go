package replica

import (
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// bPayees holds the payee records the replica mirrors: payee id → Payee
// (JSON).
var bPayees = []byte("payees")

// A Payee is a payee record as the replica holds it: the latest version
// of the hub's aggregate of members' reports of one payee, with its
// signed record. Like a Flag, it is never changed once handed out.
type Payee struct {
	ID    string                 `json:"id"`
	Token protocol.Token         `json:"token"`
	Event protocol.PayeeReported `json:"event"`
	// Record is the latest version's record.
	Record Record `json:"record"`
}

// ActiveAt reports whether the payee record counts at t.
func (p *Payee) ActiveAt(t time.Time) bool { return t.Before(p.Event.ExpiresAt.Time()) }

// putPayee makes p the payee record of its token, replacing an earlier
// version.
func (s *state) putPayee(p *Payee, d dirty) {
	if old, ok := s.payees[p.ID]; ok && old.Event.Version >= p.Event.Version {
		return
	}
	s.payees[p.ID] = p
	s.update(p.Token, func(h *holding) {
		h.payee, h.payeeExpires = p, unixNano(p.Event.ExpiresAt.Time())
	})
	d.payees[p.ID] = true
}

// dropPayee forgets payee record id, if held.
func (s *state) dropPayee(id string, d dirty) {
	if p, ok := s.payees[id]; ok {
		s.dropPayees(p.Token, d)
	}
}

// dropPayees forgets the payee records held for t.
func (s *state) dropPayees(t protocol.Token, d dirty) {
	h, _ := s.lookup(t)
	if h.payee == nil {
		return
	}
	delete(s.payees, h.payee.ID)
	d.payees[h.payee.ID] = true
	s.update(t, func(h *holding) { h.payee, h.payeeExpires = nil, 0 })
}
