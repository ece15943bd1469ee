package decide

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
)

// consumerAuthSkew is how far ahead of the hub's clock a consumer's
// authentication may be stated.
const consumerAuthSkew = time.Minute

// ConsumerAuth refuses a statement of a consumer's authentication that is
// older than the policy's ConsumerAuthMaxAge, or from the future: a member
// acts for a consumer only while the consumer is with it.
func (d *Decider) ConsumerAuth(a *protocol.ConsumerAuth, now time.Time) error {
	age := a.Age(now)
	switch {
	case age < -consumerAuthSkew:
		return FieldProblem(protocol.ProblemValidation, "request.consumer_auth.authenticated_at", "the consumer authenticated %s from now, in the future; check the member's clock", (-age).Round(time.Second))
	case age > d.Policy.ConsumerAuthMaxAge:
		return FieldProblem(protocol.ProblemValidation, "request.consumer_auth.authenticated_at", "the consumer authenticated %s ago; act for a consumer within %s of their authentication: authenticate the consumer again", age.Round(time.Second), d.Policy.ConsumerAuthMaxAge)
	}
	return nil
}

// A Directory names members for consumers: id → name.
type Directory map[string]string

// History is what the hub holds about a subject for its history and
// access report: the subject (its flag, the flag's records, its active
// suspicions), every dispute about it, the log entries indexed under it
// with their details, the checks those entries name (id → check), and the
// checks the consumer denied (check id → true; see [Denials]).
type History struct {
	Subject  state.Subject
	Disputes []*state.Dispute
	Entries  []state.SubjectEntry
	Checks   map[string]*state.Check
	Denied   map[string]bool
	Names    Directory
}

// Denials returns the ids of the checks that denials ds denied.
func Denials(ds []*state.Denial) map[string]bool {
	out := make(map[string]bool, len(ds))
	for _, d := range ds {
		out[d.CheckID] = true
	}
	return out
}

// SubjectHistory decides member m's request s (a protocol.SubjectHistory)
// for a consumer's history: the member states how the consumer
// authenticated, recently enough. The request is logged as an access by m,
// indexed under the subject (so the next history shows it, and an erasure
// of the subject takes it).
func (d *Decider) SubjectHistory(m *api.Member, s *protocol.Submission, h *History, now time.Time) (*state.Note, *api.HistoryResponse, error) {
	req := s.Request.(protocol.SubjectHistory)
	if p := d.checkToken("request.subject", req.Subject); p != nil {
		return nil, nil, p
	}
	if err := d.ConsumerAuth(req.ConsumerAuth, now); err != nil {
		return nil, nil, err
	}
	tok := req.Subject.String()
	note := &state.Note{Head: d.head(m.ID, protocol.LogSubjectHistory, now,
		map[string]any{"subject": tok, "submission": s.ID, "consumer_auth": req.ConsumerAuth}, []string{tok},
		protocol.LogAttr{Key: "method", Value: string(req.ConsumerAuth.Method)})}
	resp := &api.HistoryResponse{Subject: req.Subject}
	resp.Flag, resp.FlagRecords = d.flagEntry(m, h)
	resp.Accesses = d.accesses(tok, h)
	resp.Suspicions, resp.SuspicionsWithheld = d.suspicionEntries(h, now)
	resp.Disputes = d.disputeEntries(h)
	return note, resp, nil
}

// AccessReport decides member m's request s (a
// protocol.RequestAccessReport) for the access report on a subject: the
// history, with the consent the hub keeps (consent, a consent.Record as
// JSON, or nil), in one record signed by the hub that is never delivered
// nor kept. The request is logged as an access by m.
func (d *Decider) AccessReport(m *api.Member, s *protocol.Submission, h *History, consent json.RawMessage, now time.Time) (*state.Note, string, error) {
	req := s.Request.(protocol.RequestAccessReport)
	if p := d.checkToken("request.subject", req.Subject); p != nil {
		return nil, "", p
	}
	if err := d.ConsumerAuth(req.ConsumerAuth, now); err != nil {
		return nil, "", err
	}
	tok := req.Subject.String()
	rep := protocol.AccessReport{RequestedBy: m.ID, ConsumerAuth: *req.ConsumerAuth}
	rep.Flag, rep.FlagRecords = d.flagEntry(m, h)
	if consent != nil && h.Subject.Flag != nil {
		var held struct {
			Consent *protocol.Consent `json:"consent"`
		}
		if json.Unmarshal(consent, &held) == nil {
			rep.Consent = held.Consent
		}
	}
	rep.Accesses = d.accesses(tok, h)
	rep.Suspicions, rep.SuspicionsWithheld = d.suspicionEntries(h, now)
	rep.Disputes = d.disputeEntries(h)
	rec, err := d.sign(s.ID, []protocol.Token{req.Subject}, m.ID, "", rep, second(now))
	if err != nil {
		return nil, "", err
	}
	note := &state.Note{Head: d.head(m.ID, protocol.LogAccessReport, now,
		map[string]any{"subject": tok, "submission": s.ID, "report": rec.ID, "consumer_auth": req.ConsumerAuth}, []string{tok},
		protocol.LogAttr{Key: "method", Value: string(req.ConsumerAuth.Method)})}
	return note, rec.JWS, nil
}

func date(t time.Time) protocol.NumericDate {
	if t.IsZero() {
		return 0
	}
	return protocol.NewNumericDate(t)
}

// flagEntry is the subject's active flag and the records of it m may see.
func (d *Decider) flagEntry(m *api.Member, h *History) (*protocol.FlagEntry, []string) {
	f := h.Subject.Flag
	if f == nil {
		return nil, []string{}
	}
	return &protocol.FlagEntry{FlagID: f.ID, Kind: f.Kind, Origin: f.Origin, OriginName: h.Names[f.Origin], Status: string(f.Status),
		PlacedAt: date(f.PlacedAt), ExpiresAt: date(f.ExpiresAt), ThawFrom: date(f.ThawFrom), ThawUntil: date(f.ThawUntil)}, EntitledJWS(m, h.Subject.Records)
}

// accesses are the accesses to token the log entries record, oldest
// first. A request for a suspicion's details is one only while suspicions
// are shown to their subject.
func (d *Decider) accesses(token string, h *History) []protocol.AccessEntry {
	out := []protocol.AccessEntry{}
	for _, se := range h.Entries {
		e := se.Entry
		a := protocol.AccessEntry{At: date(e.Time), Action: string(e.Action), Member: e.Member, MemberName: h.Names[e.Member]}
		switch e.Action {
		case protocol.LogCheck:
			var det struct {
				CheckID string `json:"check_id"`
				Purpose string `json:"purpose"`
			}
			if json.Unmarshal(se.Details, &det) != nil {
				continue
			}
			a.CheckID, a.Purpose, a.Denied = det.CheckID, det.Purpose, h.Denied[det.CheckID]
			if c := h.Checks[det.CheckID]; c != nil {
				a.Outcome = c.Outcome
			}
			out = append(out, a)
		case protocol.LogReplicaCheck:
			var det struct {
				Checks []api.ReplicaCheck `json:"checks"`
			}
			if json.Unmarshal(se.Details, &det) != nil {
				continue
			}
			for _, rc := range det.Checks {
				if rc.Token == token {
					b := a
					b.At, b.Purpose = date(rc.At), rc.Purpose
					out = append(out, b)
				}
			}
		case protocol.LogSuspicionDetails:
			if d.Policy.WithholdSuspicionsFromSubject {
				continue
			}
			var det struct {
				Purpose string `json:"purpose"`
			}
			if json.Unmarshal(se.Details, &det) != nil {
				continue
			}
			a.Purpose = det.Purpose
			out = append(out, a)
		case protocol.LogSubjectHistory, protocol.LogAccessReport:
			out = append(out, a)
		}
	}
	slices.SortStableFunc(out, func(a, b protocol.AccessEntry) int { return int(a.At - b.At) })
	return out
}

// contestHow tells a consumer how to contest a suspicion.
const contestHow = "Through your bank: it opens a dispute with the hub (POST /v1/disputes), which the reporting member must acknowledge and resolve within the hub's deadlines."

// suspicionEntries are the subject's active suspicions, unless the policy
// withholds them from the subject.
func (d *Decider) suspicionEntries(h *History, now time.Time) ([]protocol.SuspicionEntry, bool) {
	out := []protocol.SuspicionEntry{}
	if d.Policy.WithholdSuspicionsFromSubject {
		return out, true
	}
	for _, sp := range h.Subject.Suspicions {
		if !sp.ActiveAt(now) {
			continue
		}
		e := protocol.SuspicionEntry{SuspicionID: sp.ID, Origin: sp.Origin, OriginName: h.Names[sp.Origin], Category: sp.Category,
			ReportedAt: date(sp.ReportedAt), ExpiresAt: date(sp.ExpiresAt), Contest: contestHow}
		if ds := h.Subject.DisputeOf(sp.ID); ds != nil {
			e.Disputed = ds.ID
		}
		out = append(out, e)
	}
	return out, false
}

// disputeEntries are the disputes about the subject; with suspicions
// withheld, those of flags only.
func (d *Decider) disputeEntries(h *History) []protocol.DisputeEntry {
	out := []protocol.DisputeEntry{}
	for _, ds := range h.Disputes {
		if ds.Suspicion != "" && d.Policy.WithholdSuspicionsFromSubject {
			continue
		}
		out = append(out, DisputeView(ds))
	}
	return out
}

// DisputeView is a dispute as its members and its consumer see it.
func DisputeView(ds *state.Dispute) protocol.DisputeEntry {
	return protocol.DisputeEntry{
		DisputeID: ds.ID, SuspicionID: ds.Suspicion, FlagID: ds.Flag, Disputant: ds.Disputant, Respondent: ds.Respondent,
		Grounds: ds.Grounds, Status: string(ds.Status), OpenedAt: date(ds.OpenedAt), AcknowledgeBy: date(ds.AckDue),
		ResolveBy: date(ds.ResolveDue), AcknowledgedAt: date(ds.AckedAt), ResolvedAt: date(ds.ResolvedAt),
		Lapsed: ds.Lapsed != "", Reason: ds.Reason,
	}
}
