package decide

import (
	"slices"
	"strconv"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
)

// RecallHolder returns the member that holds accounts at bank, from the
// operator's configuration (Policy.PayeeBanks), or a problem if none does.
func (d *Decider) RecallHolder(bank protocol.BankRef) (string, error) {
	id, ok := d.Policy.PayeeBanks[bank.String()]
	if !ok {
		return "", FieldProblem(protocol.ProblemValidation, "request.bank",
			"no member of this hub holds accounts at bank %s; recall the payment through the payment system instead", Quote(bank.String()))
	}
	return id, nil
}

// RequestRecall decides member m's submission s (a
// protocol.RequestRecall) to recall a payment from holder, the member the
// payee's bank maps to (nil: no such member). The record goes to the
// holder alone.
func (d *Decider) RequestRecall(m *api.Member, s *protocol.Submission, hash []byte, holder *api.Member, now time.Time) (*state.PutRecall, error) {
	req := s.Request.(protocol.RequestRecall)
	sec := second(now)
	if p := d.checkToken("request.payee", req.Payee); p != nil {
		return nil, p
	}
	switch {
	case holder == nil || holder.Status != api.MemberActive:
		return nil, FieldProblem(protocol.ProblemValidation, "request.bank", "the member holding bank %s is not active at this hub", Quote(req.Bank.String()))
	case holder.ID == m.ID:
		return nil, FieldProblem(protocol.ProblemValidation, "request.bank", "bank %s is yours: recall the payment in your own systems", Quote(req.Bank.String()))
	case req.PaidAt.Time().After(sec.Add(time.Minute)):
		return nil, FieldProblem(protocol.ProblemValidation, "request.paid_at", "is in the future")
	}
	id := d.id()
	rc := &state.Recall{ID: id, Version: 1, From: m.ID, To: holder.ID, Payee: req.Payee.String(), Bank: req.Bank, Amount: req.Amount,
		PaidAt: req.PaidAt.Time(), Reference: req.Reference, RequestedAt: now.UTC()}
	rec, err := d.sign(s.ID, []protocol.Token{req.Payee}, holder.ID, id, protocol.RecallRequested{RecallID: id, From: m.ID, To: holder.ID,
		Bank: req.Bank, Amount: req.Amount, PaidAt: req.PaidAt, Reference: req.Reference}, sec)
	if err != nil {
		return nil, err
	}
	rc.Records = []string{rec.ID}
	return &state.PutRecall{
		Head: d.head(m.ID, protocol.LogRecallRequested, now, map[string]any{"recall_id": id, "record": rec.ID, "to": holder.ID,
			"payee": rc.Payee, "amount": req.Amount, "reference": req.Reference}, []string{rc.Payee},
			protocol.LogAttr{Key: "to", Value: holder.ID}),
		Submission: &state.SubmissionRef{ID: s.ID, Hash: hash},
		Record:     rec,
		Recall:     rc,
	}, nil
}

// AcknowledgeRecall decides the holder m's acknowledgement of recall rc
// (nil: none). Only the holder acknowledges, once, before any outcome.
func (d *Decider) AcknowledgeRecall(m *api.Member, s *protocol.Submission, hash []byte, rc *state.Recall, now time.Time) (*state.PutRecall, error) {
	req := s.Request.(protocol.AcknowledgeRecall)
	sec := second(now)
	if rc == nil || rc.To != m.ID {
		return nil, problemf(protocol.ProblemNotFound, "no recall %s addressed to member %q", Quote(req.RecallID), m.ID)
	}
	if !rc.AckedAt.IsZero() {
		return nil, problemf(protocol.ProblemStateConflict, "recall %q was acknowledged already", rc.ID)
	}
	next := nextRecall(rc)
	next.AckedAt = now.UTC()
	rec, err := d.signRecall(s.ID, rc, protocol.RecallAcknowledged{RecallID: rc.ID, By: m.ID, Reference: rc.Reference, At: protocol.NewNumericDate(sec)}, sec)
	if err != nil {
		return nil, err
	}
	next.Records = append(next.Records, rec.ID)
	return &state.PutRecall{
		Head: d.head(m.ID, protocol.LogRecallAcknowledged, now, map[string]any{"recall_id": rc.ID, "record": rec.ID}, nil,
			protocol.LogAttr{Key: "from", Value: rc.From}, protocol.LogAttr{Key: "after_ms", Value: millis(rc.RequestedAt, now)}),
		Submission: &state.SubmissionRef{ID: s.ID, Hash: hash},
		Record:     rec,
		Recall:     next,
	}, nil
}

// RecallOutcome decides the holder m's report of what became of the money
// of recall rc (nil: none): frozen or returned (an amount up to the
// payment's, in its currency), or gone (what was left, perhaps nothing).
// An outcome without an acknowledgement acknowledges as well.
func (d *Decider) RecallOutcome(m *api.Member, s *protocol.Submission, hash []byte, rc *state.Recall, now time.Time) (*state.PutRecall, error) {
	req := s.Request.(protocol.ReportRecallOutcome)
	sec := second(now)
	if rc == nil || rc.To != m.ID {
		return nil, problemf(protocol.ProblemNotFound, "no recall %s addressed to member %q", Quote(req.RecallID), m.ID)
	}
	switch {
	case rc.Outcome != "":
		return nil, problemf(protocol.ProblemStateConflict, "recall %q has its outcome already: %s", rc.ID, rc.Outcome)
	case req.Amount.Currency != rc.Amount.Currency:
		return nil, FieldProblem(protocol.ProblemValidation, "request.amount.currency", "is %s; the payment was in %s", Quote(req.Amount.Currency), rc.Amount.Currency)
	case req.Amount.Minor > rc.Amount.Minor:
		return nil, FieldProblem(protocol.ProblemValidation, "request.amount.minor", "%s is more than the payment, %s", req.Amount, rc.Amount)
	}
	next := nextRecall(rc)
	if next.AckedAt.IsZero() {
		next.AckedAt = now.UTC()
	}
	amount := req.Amount
	next.Outcome, next.OutcomeAt, next.Recovered = req.Outcome, now.UTC(), &amount
	rec, err := d.signRecall(s.ID, rc, protocol.RecallOutcome{RecallID: rc.ID, By: m.ID, Reference: rc.Reference, Outcome: req.Outcome, Amount: req.Amount}, sec)
	if err != nil {
		return nil, err
	}
	next.Records = append(next.Records, rec.ID)
	return &state.PutRecall{
		Head: d.head(m.ID, protocol.LogRecallOutcome, now, map[string]any{"recall_id": rc.ID, "record": rec.ID, "outcome": req.Outcome, "amount": req.Amount}, nil,
			protocol.LogAttr{Key: "from", Value: rc.From}, protocol.LogAttr{Key: "outcome", Value: string(req.Outcome)},
			protocol.LogAttr{Key: "after_ms", Value: millis(rc.RequestedAt, now)}),
		Submission: &state.SubmissionRef{ID: s.ID, Hash: hash},
		Record:     rec,
		Recall:     next,
	}, nil
}

// signRecall signs a record of recall rc for its requester.
// A recall whose payee was erased (see [state.Recall.Scrubbed]) has no
// subject to sign for: it refuses further steps with a state conflict.
func (d *Decider) signRecall(txn string, rc *state.Recall, ev protocol.Event, at time.Time) (*state.Record, error) {
	if rc.Payee == "" {
		return nil, problemf(protocol.ProblemStateConflict, "recall %q names a payee that was erased; settle the rest of the case with the other bank directly", rc.ID)
	}
	tok, err := protocol.ParseToken(rc.Payee)
	if err != nil {
		return nil, err
	}
	return d.sign(txn, []protocol.Token{tok}, rc.From, rc.ID, ev, at)
}

func nextRecall(rc *state.Recall) *state.Recall {
	n := *rc
	n.Version++
	n.Records = slices.Clone(rc.Records)
	return &n
}

// millis is the time from a to b in whole milliseconds, as text.
func millis(a, b time.Time) string { return strconv.FormatInt(b.Sub(a).Milliseconds(), 10) }

// RecallView is recall rc as the API shows it to its two sides.
func RecallView(rc *state.Recall, rec *state.Record) *api.Recall {
	v := &api.Recall{RecallID: rc.ID, From: rc.From, To: rc.To, Bank: rc.Bank, Amount: rc.Amount, PaidAt: rc.PaidAt.UTC(), Reference: rc.Reference,
		Status: "requested", RequestedAt: rc.RequestedAt.UTC(), AcknowledgedAt: rc.AckedAt, OutcomeAt: rc.OutcomeAt, Outcome: rc.Outcome, Recovered: rc.Recovered}
	if !rc.AckedAt.IsZero() {
		v.Status = "acknowledged"
		ms := rc.AckedAt.Sub(rc.RequestedAt).Milliseconds()
		v.AcknowledgeMillis = &ms
	}
	if rc.Outcome != "" {
		v.Status = string(rc.Outcome)
		ms := rc.OutcomeAt.Sub(rc.RequestedAt).Milliseconds()
		v.OutcomeMillis = &ms
	}
	if rec != nil {
		v.Record = rec.JWS
	}
	return v
}

// ExpireRecall decides the end of closed recall rc at the end of its
// retention: the hub deletes it and its records. Its two sides keep their
// own case files; no record is sent.
func (d *Decider) ExpireRecall(rc *state.Recall, now time.Time) *state.ExpireRecall {
	return &state.ExpireRecall{
		Head:   d.head(Hub, protocol.LogRecallExpired, now, map[string]string{"recall_id": rc.ID}, nil),
		Recall: rc,
		Erase:  state.Erase{Records: rc.Records, Basis: "retention-ended"},
	}
}
