package replica

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// A Record is one of the hub's signed records, as the replica keeps it.
type Record struct {
	// Seq is the hub's sequence number of the record's event.
	Seq  uint64             `json:"seq"`
	ID   string             `json:"id"`
	Type protocol.EventType `json:"type"`
	// JWS is the record exactly as the hub signed it.
	JWS string `json:"jws"`
}

// A Flag is an active protection flag as the replica holds it, built from
// its signed records. A Flag is never changed once the replica has handed
// it out; do not change it either.
type Flag struct {
	ID           string                 `json:"id"`
	Token        protocol.Token         `json:"token"`
	Kind         protocol.FlagKind      `json:"kind"`
	Origin       string                 `json:"origin"`
	ExpiresAt    time.Time              `json:"expires_at"`
	ThawFrom     time.Time              `json:"thaw_from,omitzero"`
	ThawUntil    time.Time              `json:"thaw_until,omitzero"`
	PoliceReport *protocol.PoliceReport `json:"police_report,omitempty"`
	// Records are the flag's records, oldest first: placed, then extended
	// and thawed ones.
	Records []Record `json:"records"`
}

// ActiveAt reports whether the flag protects its token at t: before its
// expiry, even if the hub has not yet sent the expiry record.
func (f *Flag) ActiveAt(t time.Time) bool { return t.Before(f.ExpiresAt) }

// ThawedAt reports whether t is in the flag's thaw window.
func (f *Flag) ThawedAt(t time.Time) bool {
	return !f.ThawFrom.IsZero() && !t.Before(f.ThawFrom) && t.Before(f.ThawUntil)
}

// A Suspicion is an active suspicion the member reported itself, as its
// replica holds it: the hub sends a suspicion's records to its reporter
// alone. Like a Flag, it is never changed once handed out.
type Suspicion struct {
	ID        string                     `json:"id"`
	Tokens    []protocol.Token           `json:"tokens"`
	Category  protocol.SuspicionCategory `json:"category"`
	Origin    string                     `json:"origin"`
	ExpiresAt time.Time                  `json:"expires_at"`
	// Records are the suspicion's full record, with its police report
	// (and the hit record of one reported to a hub of an earlier version,
	// which sent both).
	Records []Record `json:"records"`
}

// ActiveAt reports whether the suspicion counts at t.
func (s *Suspicion) ActiveAt(t time.Time) bool { return t.Before(s.ExpiresAt) }

// An Advice is the replica's answer for one token, and why: for flags,
// the advice the hub's check would give at the same moment; for
// suspicions, the member's own alone (the hub's check also counts other
// members').
type Advice struct {
	// Advice is api.AdviceVerify for an active flag that is not
	// thawed, api.AdviceReview for active suspicions the member reported
	// without one, and api.AdviceNone otherwise.
	Advice api.Advice
	// Flag is the token's active flag, thawed or not; nil if none.
	Flag *Flag
	// Thawed says the flag is in its thaw window now.
	Thawed bool
	// Suspicions are the token's active suspicions that the member
	// reported, by id; nil if none.
	Suspicions []*Suspicion
	// Payee is the token's payee record, while it counts: members
	// reported the payee as the receiver of fraud (api.AdviceWarn
	// without a flag or suspicion).
	Payee *Payee
}

// String returns the advice: "verify", "review" or "none".
func (a Advice) String() string { return string(a.Advice) }

// holding is what the replica holds for one token. It is kept by value in
// the index, with the times a check compares, so that a check follows no
// pointer before it knows its answer.
type holding struct {
	// The token's type and epoch; the index is keyed by its value alone,
	// which hashes faster.
	typ   protocol.IdentifierType
	epoch uint32
	flag  *Flag
	// The flag's expiry and thaw window in Unix nanoseconds; 0 for none.
	expires, thawFrom, thawUntil int64
	susps                        []*Suspicion // by id
	payee                        *Payee
	payeeExpires                 int64
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// setFlag makes f the holding's flag (nil for none).
func (h *holding) setFlag(f *Flag) {
	h.flag, h.expires, h.thawFrom, h.thawUntil = f, 0, 0, 0
	if f != nil {
		h.expires, h.thawFrom, h.thawUntil = unixNano(f.ExpiresAt), unixNano(f.ThawFrom), unixNano(f.ThawUntil)
	}
}

// advice answers for the holding at now, as the hub's check does for what
// the replica holds.
func (h holding) advice(now int64) Advice {
	a := Advice{Advice: api.AdviceNone}
	if h.flag != nil && now < h.expires {
		a.Flag, a.Thawed = h.flag, h.thawFrom != 0 && now >= h.thawFrom && now < h.thawUntil
		if !a.Thawed {
			a.Advice = api.AdviceVerify
		}
	}
	for _, s := range h.susps {
		if now < s.ExpiresAt.UnixNano() {
			a.Suspicions = append(a.Suspicions, s)
		}
	}
	if a.Suspicions != nil && a.Advice == api.AdviceNone {
		a.Advice = api.AdviceReview
	}
	if h.payee != nil && now < h.payeeExpires {
		a.Payee = h.payee
		if a.Advice == api.AdviceNone {
			a.Advice = api.AdviceWarn
		}
	}
	return a
}

// state is the replica's in-memory index. Only the one writer changes it;
// flags and suspicions in it are replaced, never changed, so that readers
// may keep what they were handed.
type state struct {
	flags   map[string]*Flag
	susps   map[string]*Suspicion
	payees  map[string]*Payee
	byToken map[[protocol.TokenSize]byte]holding
}

func newState() *state {
	return &state{flags: map[string]*Flag{}, susps: map[string]*Suspicion{}, payees: map[string]*Payee{}, byToken: map[[protocol.TokenSize]byte]holding{}}
}

// errDiverged says the replica and the hub disagree: an event refers to a
// flag the replica does not hold, or the hub's feed ends before the
// replica's sequence number. The feed cannot mend that; the replica starts
// again from a snapshot.
var errDiverged = errors.New("replica diverged from the hub")

// dirty names what an apply changed, to be written to the store.
type dirty struct {
	flags  map[string]bool
	susps  map[string]bool
	payees map[string]bool
}

func newDirty() dirty {
	return dirty{flags: map[string]bool{}, susps: map[string]bool{}, payees: map[string]bool{}}
}

// apply applies one verified event.
func (s *state) apply(e *client.Event, d dirty) error {
	rec := Record{Seq: e.Seq, ID: e.Record.ID, Type: e.Type, JWS: e.JWS}
	var toks []protocol.Token
	if e.Record.Subject != nil {
		var err error
		if toks, err = e.Record.Subject.Tokens(); err != nil {
			return fmt.Errorf("event %d: %w", e.Seq, err)
		}
	}
	switch ev := e.Record.Event.(type) {
	case protocol.FlagPlaced:
		if len(toks) != 1 {
			return fmt.Errorf("event %d: a flag has one subject, this one %d", e.Seq, len(toks))
		}
		if h, _ := s.lookup(toks[0]); h.flag != nil && h.flag.ID != ev.FlagID {
			s.dropFlag(h.flag.ID, d)
		}
		s.putFlag(&Flag{ID: ev.FlagID, Token: toks[0], Kind: ev.Kind, Origin: ev.Origin, ExpiresAt: ev.ExpiresAt.Time(),
			PoliceReport: ev.PoliceReport, Records: []Record{rec}}, d)
	case protocol.FlagExtended:
		old, ok := s.flags[ev.FlagID]
		if !ok {
			return fmt.Errorf("%w: event %d extends flag %s, which it does not hold", errDiverged, e.Seq, ev.FlagID)
		}
		f := *old
		f.Kind, f.ExpiresAt, f.Records = ev.Kind, ev.ExpiresAt.Time(), append(slices.Clip(old.Records), rec)
		if ev.PoliceReport != nil {
			f.PoliceReport = ev.PoliceReport
		}
		s.putFlag(&f, d)
	case protocol.FlagThawed:
		old, ok := s.flags[ev.FlagID]
		if !ok {
			return fmt.Errorf("%w: event %d thaws flag %s, which it does not hold", errDiverged, e.Seq, ev.FlagID)
		}
		f := *old
		f.ThawFrom, f.ThawUntil, f.Records = ev.ThawedFrom.Time(), ev.ThawedUntil.Time(), append(slices.Clip(old.Records), rec)
		s.putFlag(&f, d)
	case protocol.FlagExpiring:
		// A reminder to the member that placed the flag; the hub's checks
		// show it with the flag's records.
		if old, ok := s.flags[ev.FlagID]; ok {
			f := *old
			f.Records = append(slices.Clip(old.Records), rec)
			s.putFlag(&f, d)
		}
	case protocol.FlagLifted, protocol.FlagExpired:
		// Consent withdrawn or run out: forget the flag, and whatever flag
		// is held for its token.
		id, _ := client.FlagID(ev)
		s.dropFlag(id, d)
		for _, t := range toks {
			if h, _ := s.lookup(t); h.flag != nil {
				s.dropFlag(h.flag.ID, d)
			}
		}
	case protocol.SuspicionReported:
		if len(toks) == 0 {
			return fmt.Errorf("event %d: a suspicion without subjects", e.Seq)
		}
		sp := &Suspicion{ID: ev.SuspicionID, Tokens: toks, Category: ev.Category, Origin: ev.Origin, ExpiresAt: ev.ExpiresAt.Time(), Records: []Record{rec}}
		if old, ok := s.susps[ev.SuspicionID]; ok {
			// The full record and the hit record of one suspicion, as a
			// hub of an earlier version sent its reporter.
			sp.Records = append(slices.Clip(old.Records), rec)
		}
		s.putSuspicion(sp, d)
	case protocol.SuspicionRetracted, protocol.SuspicionExpired:
		id, _ := client.SuspicionID(ev)
		s.dropSuspicion(id, d)
	case protocol.SubjectErased:
		// Everything about the subject goes.
		for _, t := range toks {
			h, _ := s.lookup(t)
			if h.flag != nil {
				s.dropFlag(h.flag.ID, d)
			}
			for _, sp := range h.susps {
				s.dropSuspicion(sp.ID, d)
			}
			s.dropPayees(t, d)
		}
	case protocol.PayeeReported:
		if len(toks) != 1 {
			return fmt.Errorf("event %d: a payee record has one subject, this one %d", e.Seq, len(toks))
		}
		s.putPayee(&Payee{ID: ev.PayeeID, Token: toks[0], Event: ev, Record: rec}, d)
	case protocol.PayeeExpired:
		// The record reached the end of its retention at the hub.
		s.dropPayee(ev.PayeeID, d)
	case protocol.Verification:
		// A test of the endpoint; nothing to keep.
	case protocol.SubjectChecked, protocol.CheckDenied:
		// Addressed to this member, for the consumer's app or the
		// application desk (see client.Event.SubjectChecked and
		// CheckDenied); a replica's answers do not depend on them.
	}
	return nil
}

// update changes the holding of t, and forgets a token that nothing is
// held for any more.
func (s *state) update(t protocol.Token, change func(*holding)) {
	h := s.byToken[t.Value]
	h.typ, h.epoch = t.Type, t.Epoch
	change(&h)
	if h.flag == nil && len(h.susps) == 0 && h.payee == nil {
		delete(s.byToken, t.Value)
		return
	}
	s.byToken[t.Value] = h
}

// lookup returns the holding of t.
func (s *state) lookup(t protocol.Token) (holding, bool) {
	h, ok := s.byToken[t.Value]
	if !ok || h.typ != t.Type || h.epoch != t.Epoch {
		return holding{}, false
	}
	return h, true
}

func (s *state) putFlag(f *Flag, d dirty) {
	s.flags[f.ID] = f
	s.update(f.Token, func(h *holding) { h.setFlag(f) })
	d.flags[f.ID] = true
}

func (s *state) dropFlag(id string, d dirty) {
	f, ok := s.flags[id]
	if !ok {
		return
	}
	delete(s.flags, id)
	s.update(f.Token, func(h *holding) {
		if h.flag != nil && h.flag.ID == id {
			h.setFlag(nil)
		}
	})
	d.flags[id] = true
}

func (s *state) putSuspicion(sp *Suspicion, d dirty) {
	if _, ok := s.susps[sp.ID]; ok {
		s.unindex(sp.ID)
	}
	s.susps[sp.ID] = sp
	for _, t := range sp.Tokens {
		s.update(t, func(h *holding) {
			i, _ := slices.BinarySearchFunc(h.susps, sp.ID, func(x *Suspicion, id string) int { return cmp.Compare(x.ID, id) })
			h.susps = slices.Insert(slices.Clip(h.susps), i, sp)
		})
	}
	d.susps[sp.ID] = true
}

func (s *state) dropSuspicion(id string, d dirty) {
	if _, ok := s.susps[id]; !ok {
		return
	}
	s.unindex(id)
	delete(s.susps, id)
	d.susps[id] = true
}

// unindex removes a suspicion from its tokens' holdings.
func (s *state) unindex(id string) {
	for _, t := range s.susps[id].Tokens {
		s.update(t, func(h *holding) {
			h.susps = slices.DeleteFunc(slices.Clone(h.susps), func(x *Suspicion) bool { return x.ID == id })
			if len(h.susps) == 0 {
				h.susps = nil
			}
		})
	}
}
