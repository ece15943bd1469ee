package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sparr-dev/sparr/consent"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/store"
)

// A flagView is a flag as the API shows it.
type flagView struct {
	FlagID       string                 `json:"flag_id"`
	Subject      string                 `json:"subject,omitempty"`
	Kind         protocol.FlagKind      `json:"kind"`
	Origin       string                 `json:"origin"`
	Status       store.FlagStatus       `json:"status"`
	Thawed       bool                   `json:"thawed"`
	PlacedAt     time.Time              `json:"placed_at"`
	ExpiresAt    time.Time              `json:"expires_at"`
	ThawFrom     *time.Time             `json:"thaw_from,omitempty"`
	ThawUntil    *time.Time             `json:"thaw_until,omitempty"`
	ConsentRef   string                 `json:"consent_ref,omitempty"`
	PoliceReport *protocol.PoliceReport `json:"police_report,omitempty"`
}

func flagViewOf(f *store.Flag, now time.Time) *flagView {
	v := &flagView{
		FlagID: f.ID, Subject: f.Subject, Kind: f.Kind, Origin: f.Origin, Status: f.Status,
		Thawed: f.ActiveAt(now) && f.ThawedAt(now), PlacedAt: f.PlacedAt, ExpiresAt: f.ExpiresAt,
		ConsentRef: f.ConsentID, PoliceReport: f.PoliceReport,
	}
	if f.Status == store.FlagActive && !now.Before(f.ExpiresAt) {
		v.Status = store.FlagExpired
	}
	if !f.ThawFrom.IsZero() && now.Before(f.ThawUntil) {
		v.ThawFrom, v.ThawUntil = &f.ThawFrom, &f.ThawUntil
	}
	return v
}

// flagViewFor is f as member m may see it: all of it if m placed it;
// otherwise what a check would show, without the subject, the consent
// reference or the police report.
func flagViewFor(m *api.Member, f *store.Flag, now time.Time) *flagView {
	v := flagViewOf(f, now)
	if m.ID != f.Origin {
		v.Subject, v.ConsentRef, v.PoliceReport = "", "", nil
	}
	return v
}

// flagExpiry returns the expiry of a flag of kind placed or extended at
// now: the one asked for, or the longest the policy allows.
func (h *Hub) flagExpiry(kind protocol.FlagKind, asked protocol.NumericDate, now time.Time) (time.Time, *protocol.Problem) {
	longest := h.cfg.Policy.StandardFlag
	if kind == protocol.FlagKindExtended {
		longest = h.cfg.Policy.MaxExtendedFlag
	}
	latest := now.Add(longest)
	if asked == 0 {
		return latest, nil
	}
	at := asked.Time()
	switch {
	case !at.After(now):
		return time.Time{}, fieldProblem(protocol.ProblemValidation, "request.expires_at", "%s is not in the future", asked)
	case at.After(latest):
		return time.Time{}, fieldProblem(protocol.ProblemValidation, "request.expires_at",
			"%s is more than the %d days a %s flag may last from now; ask for %s or earlier", asked, longest/(24*time.Hour), kind, latest.Format(time.RFC3339))
	}
	return at, nil
}

func fieldProblem(t protocol.ProblemType, field, format string, args ...any) *protocol.Problem {
	p := problemf(t, "%s: %s", field, fmt.Sprintf(format, args...))
	p.Errors = []protocol.ProblemField{{Pointer: field, Detail: fmt.Sprintf(format, args...)}}
	return p
}

// checkPoliceReport refuses a report dated in the future.
func checkPoliceReport(r *protocol.PoliceReport, now time.Time) *protocol.Problem {
	if r == nil {
		return nil
	}
	d, _ := time.Parse(time.DateOnly, r.Date)
	if d.After(now) {
		return fieldProblem(protocol.ProblemValidation, "request.police_report.date", "%s is in the future", r.Date)
	}
	return nil
}

// placeFlag: POST /v1/flags.
func (h *Hub) placeFlag(c *gin.Context) {
	s, hash, ok := h.readSubmission(c, protocol.ActionPlaceFlag)
	if !ok || h.replayed(c, s, hash) {
		return
	}
	m, req, now := member(c), s.Request.(protocol.PlaceFlag), h.now().UTC().Truncate(time.Second)
	if p := h.checkToken("request.subject", req.Subject); p != nil {
		h.fail(c, p)
		return
	}
	expiry, p := h.flagExpiry(req.Kind, req.ExpiresAt, now)
	if p == nil {
		p = checkPoliceReport(req.PoliceReport, now)
	}
	if p != nil {
		h.fail(c, p)
		return
	}
	if err := h.cfg.Policy.Consent.Validate(req.Consent, m.ID, expiry, now); err != nil {
		h.fail(c, consentProblem(err))
		return
	}
	cmd, res, ok := h.apply(c, func() (*store.Command, *protocol.Problem) {
		at := h.now()
		// A flag past its expiry that the expiry job has not ended yet
		// protects no one: this placement ends it, as the job would, and
		// takes its place.
		var lapsed *store.Command
		f, err := h.store.FlagByToken(req.Subject.String())
		switch {
		case err == nil && !f.ActiveAt(at):
			if lapsed, err = h.expiry(f, at); err != nil {
				return nil, h.internalProblem(c, "end lapsed flag", err)
			}
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return nil, h.internalProblem(c, "read subject's flag", err)
		}
		id := newID()
		rec, err := h.sign(s.ID, []protocol.Token{req.Subject}, "", id, protocol.FlagPlaced{
			FlagID: id, Kind: req.Kind, Origin: m.ID, ExpiresAt: protocol.NewNumericDate(expiry),
			ConsentRef: req.Consent.ID, PoliceReport: req.PoliceReport, Reason: req.Reason,
		}, now)
		if err != nil {
			return nil, problemf(protocol.ProblemInternal, "signing failed")
		}
		kept, _ := json.Marshal(consent.NewRecord(*req.Consent, id, now))
		return &store.Command{
			At: at, Actor: m.ID, Action: protocol.LogFlagPlaced,
			Salt: salt(), Details: details(map[string]string{"flag_id": id, "record": rec.ID, "subject": req.Subject.String()}),
			Subjects:   []string{req.Subject.String()},
			First:      lapsed,
			Submission: &store.SubmissionRef{ID: s.ID, Hash: hash},
			Record:     rec,
			Flag: &store.Flag{ID: id, Version: 1, Subject: req.Subject.String(), Kind: req.Kind, Origin: m.ID,
				Status: store.FlagActive, PlacedAt: now, ExpiresAt: expiry, RemindAt: expiry.Add(-h.cfg.Policy.Reminder), ConsentID: req.Consent.ID,
				PoliceReport: req.PoliceReport, Records: []string{rec.ID}},
			Consent: &store.ConsentPut{ID: id, Value: kept},
		}, nil
	})
	if !ok {
		return
	}
	if res.Existing != nil {
		c.JSON(http.StatusOK, writeResponse{Flag: flagViewFor(m, res.Existing, now), Existing: true, LogIndex: res.LogIndex})
		return
	}
	c.Header("Location", "/v1/flags/"+cmd.Flag.ID)
	c.JSON(http.StatusCreated, writeResponse{Flag: flagViewOf(cmd.Flag, now), Record: cmd.Record.JWS, Seq: res.Seq, LogIndex: res.LogIndex})
}

// expiry is the command that ends flag f once past its expiry, as the
// expiry job does: like a lift, it deletes the consent and the earlier
// records, and its record tells members to delete theirs.
func (h *Hub) expiry(f *store.Flag, now time.Time) (*store.Command, error) {
	tok, err := protocol.ParseToken(f.Subject)
	if err != nil {
		return nil, err
	}
	at := now.UTC().Truncate(time.Second)
	rec, err := h.sign(newID(), []protocol.Token{tok}, "", f.ID, protocol.FlagExpired{FlagID: f.ID, ExpiredAt: protocol.NewNumericDate(f.ExpiresAt)}, at)
	if err != nil {
		return nil, err
	}
	return &store.Command{
		At: now, Actor: "hub", Action: protocol.LogFlagExpired,
		Salt: salt(), Details: details(map[string]string{"flag_id": f.ID, "record": rec.ID}),
		Record: rec, Flag: ended(f, rec, store.FlagExpired, at), Erase: &store.Erase{Records: f.Records, Consent: f.ID,
			Subjects: []string{f.Subject}, Actions: liftErases, Basis: "flag-expired"},
	}, nil
}

// activeFlag reads the flag a submission is about and refuses one that no
// longer protects anyone.
func (h *Hub) activeFlag(id string, now time.Time) (*store.Flag, *protocol.Problem) {
	f, err := h.store.Flag(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, problemf(protocol.ProblemNotFound, "no flag %q", id)
	}
	if err != nil {
		return nil, problemf(protocol.ProblemInternal, "reading the flag failed")
	}
	if !f.ActiveAt(now) {
		return nil, problemf(protocol.ProblemStateConflict, "flag %q is %s", id, flagViewOf(f, now).Status)
	}
	return f, nil
}

// next returns a copy of f one version on, with rec appended to its records.
func next(f *store.Flag, rec *store.Record) *store.Flag {
	n := *f
	n.Version++
	n.Records = append(append([]string(nil), f.Records...), rec.ID)
	return &n
}

// changeFlag is the write path of extend, thaw and lift: read the
// submission, then plan against the current flag with change, which returns
// the event and the flag's new state (and what to erase).
func (h *Hub) changeFlag(c *gin.Context, action protocol.Action, logAction protocol.LogAction, flagID func(protocol.Request) string,
	change func(f *store.Flag, req protocol.Request, now time.Time) (protocol.Event, func(*store.Flag, *store.Record) (*store.Flag, *store.Erase), *protocol.Problem)) {
	s, hash, ok := h.readSubmission(c, action)
	if !ok || !h.checkPathID(c, "flag_id", flagID(s.Request)) || h.replayed(c, s, hash) {
		return
	}
	m, now := member(c), h.now().UTC().Truncate(time.Second)
	cmd, res, ok := h.apply(c, func() (*store.Command, *protocol.Problem) {
		f, p := h.activeFlag(c.Param("id"), now)
		if p != nil {
			return nil, p
		}
		ev, state, p := change(f, s.Request, now)
		if p != nil {
			return nil, p
		}
		tok, err := protocol.ParseToken(f.Subject)
		if err != nil {
			return nil, problemf(protocol.ProblemInternal, "stored flag has no subject")
		}
		rec, err := h.sign(s.ID, []protocol.Token{tok}, "", f.ID, ev, now)
		if err != nil {
			return nil, problemf(protocol.ProblemInternal, "signing failed")
		}
		nf, erase := state(f, rec)
		return &store.Command{
			At: h.now(), Actor: m.ID, Action: logAction,
			Salt: salt(), Details: details(map[string]string{"flag_id": f.ID, "record": rec.ID}),
			Submission: &store.SubmissionRef{ID: s.ID, Hash: hash},
			Record:     rec, Flag: nf, Erase: erase,
		}, nil
	})
	if !ok {
		return
	}
	c.JSON(http.StatusOK, writeResponse{Flag: flagViewFor(m, cmd.Flag, now), Record: cmd.Record.JWS, Seq: res.Seq, LogIndex: res.LogIndex})
}

// extendFlag: POST /v1/flags/{id}/extend.
func (h *Hub) extendFlag(c *gin.Context) {
	m := member(c)
	h.changeFlag(c, protocol.ActionExtendFlag, protocol.LogFlagExtended, func(r protocol.Request) string { return r.(protocol.ExtendFlag).FlagID },
		func(f *store.Flag, r protocol.Request, now time.Time) (protocol.Event, func(*store.Flag, *store.Record) (*store.Flag, *store.Erase), *protocol.Problem) {
			req := r.(protocol.ExtendFlag)
			if f.Kind == protocol.FlagKindExtended && req.Kind == protocol.FlagKindStandard {
				return nil, nil, fieldProblem(protocol.ProblemValidation, "request.kind", "an extended flag cannot become standard")
			}
			expiry, p := h.flagExpiry(req.Kind, req.ExpiresAt, now)
			if p == nil {
				p = checkPoliceReport(req.PoliceReport, now)
			}
			if p != nil {
				return nil, nil, p
			}
			if !expiry.After(f.ExpiresAt) {
				return nil, nil, fieldProblem(protocol.ProblemValidation, "request.expires_at", "%s is not later than the flag's expiry %s", expiry.Format(time.RFC3339), f.ExpiresAt.Format(time.RFC3339))
			}
			if req.Kind == protocol.FlagKindStandard {
				if p := h.consentCovers(f, expiry); p != nil {
					return nil, nil, p
				}
			}
			report := req.PoliceReport
			if report == nil {
				report = f.PoliceReport
			}
			ev := protocol.FlagExtended{FlagID: f.ID, Kind: req.Kind, Origin: m.ID, ExpiresAt: protocol.NewNumericDate(expiry), PoliceReport: req.PoliceReport}
			return ev, func(f *store.Flag, rec *store.Record) (*store.Flag, *store.Erase) {
				n := next(f, rec)
				n.Kind, n.ExpiresAt, n.PoliceReport = req.Kind, expiry, report
				n.RemindAt, n.RemindedAt = expiry.Add(-h.cfg.Policy.Reminder), time.Time{}
				return n, nil
			}, nil
		})
}

// consentCovers refuses to extend a standard flag past its consent.
func (h *Hub) consentCovers(f *store.Flag, expiry time.Time) *protocol.Problem {
	raw, err := h.store.Consent(f.ID)
	if err != nil {
		return problemf(protocol.ProblemInternal, "reading the flag's consent failed")
	}
	var rec consent.Record
	if err := json.Unmarshal(raw, &rec); err != nil {
		return problemf(protocol.ProblemInternal, "reading the flag's consent failed")
	}
	if lapses := rec.Consent.ExpiresAt.Time(); lapses.Before(expiry) {
		return fieldProblem(protocol.ProblemInvalidConsent, "request.expires_at",
			"the consumer's consent lapses at %s, before %s; a standard flag cannot outlive its consent (extend it as an extended flag with a police report, or lift it and place it again with new consent)",
			lapses.Format(time.RFC3339), expiry.Format(time.RFC3339))
	}
	return nil
}

// thawFlag: POST /v1/flags/{id}/thaw.
func (h *Hub) thawFlag(c *gin.Context) {
	m := member(c)
	h.changeFlag(c, protocol.ActionThawFlag, protocol.LogFlagThawed, func(r protocol.Request) string { return r.(protocol.ThawFlag).FlagID },
		func(f *store.Flag, r protocol.Request, now time.Time) (protocol.Event, func(*store.Flag, *store.Record) (*store.Flag, *store.Erase), *protocol.Problem) {
			req := r.(protocol.ThawFlag)
			from := now
			if req.ThawFrom != 0 {
				from = req.ThawFrom.Time()
			}
			until := req.ThawUntil.Time()
			ahead := h.cfg.Policy.MaxThawAhead
			switch {
			case from.Before(now.Add(-time.Minute)):
				return nil, nil, fieldProblem(protocol.ProblemValidation, "request.thaw_from", "%s is in the past; leave it out to thaw from now", req.ThawFrom)
			case from.After(now.Add(ahead)):
				return nil, nil, fieldProblem(protocol.ProblemValidation, "request.thaw_from",
					"%s is more than the %d days ahead a thaw may start on this hub; ask for %s or earlier", req.ThawFrom, ahead/(24*time.Hour), now.Add(ahead).Format(time.RFC3339))
			case !until.After(from):
				return nil, nil, fieldProblem(protocol.ProblemValidation, "request.thaw_until", "%s is not after the thaw's start %s", req.ThawUntil, from.Format(time.RFC3339))
			case until.Sub(from) > h.cfg.Policy.MaxThaw:
				return nil, nil, fieldProblem(protocol.ProblemValidation, "request.thaw_until",
					"a thaw of %s is longer than the %s this hub allows", until.Sub(from), h.cfg.Policy.MaxThaw)
			case until.After(f.ExpiresAt):
				return nil, nil, fieldProblem(protocol.ProblemValidation, "request.thaw_until",
					"%s is after the flag's expiry; a thaw cannot outlast the flag: ask for %s or earlier", req.ThawUntil, f.ExpiresAt.Format(time.RFC3339))
			}
			ev := protocol.FlagThawed{FlagID: f.ID, Origin: m.ID, ThawedFrom: protocol.NewNumericDate(from), ThawedUntil: protocol.NewNumericDate(until)}
			return ev, func(f *store.Flag, rec *store.Record) (*store.Flag, *store.Erase) {
				n := next(f, rec)
				n.ThawFrom, n.ThawUntil = from, until
				return n, nil
			}, nil
		})
}

// liftErases are the log actions whose details a lift deletes for the
// flag's subject: every placement and check that named it. Suspicions that
// name it stand on their own legal basis and keep theirs.
var liftErases = []protocol.LogAction{protocol.LogFlagPlaced, protocol.LogFlagAlreadyActive, protocol.LogCheck}

// liftFlag: POST /v1/flags/{id}/lift. Lifting withdraws consent: once the
// lift is recorded, the consent, the flag's earlier records and the details
// of every log entry of a placement or check naming its subject are
// deleted, and the lift record tells every member to delete theirs.
func (h *Hub) liftFlag(c *gin.Context) {
	m := member(c)
	h.changeFlag(c, protocol.ActionLiftFlag, protocol.LogFlagLifted, func(r protocol.Request) string { return r.(protocol.LiftFlag).FlagID },
		func(f *store.Flag, r protocol.Request, now time.Time) (protocol.Event, func(*store.Flag, *store.Record) (*store.Flag, *store.Erase), *protocol.Problem) {
			ev := protocol.FlagLifted{FlagID: f.ID, Origin: m.ID, Reason: r.(protocol.LiftFlag).Reason}
			return ev, func(f *store.Flag, rec *store.Record) (*store.Flag, *store.Erase) {
				return ended(f, rec, store.FlagLifted, now), &store.Erase{Records: f.Records, Consent: f.ID,
					Subjects: []string{f.Subject}, Actions: liftErases, Basis: "consent-withdrawn"}
			}, nil
		})
}

// ended is a flag's last state: no subject, consent or report kept, and
// only the record that ended it.
func ended(f *store.Flag, rec *store.Record, status store.FlagStatus, now time.Time) *store.Flag {
	return &store.Flag{
		ID: f.ID, Version: f.Version + 1, Kind: f.Kind, Origin: f.Origin, Status: status,
		PlacedAt: f.PlacedAt, ExpiresAt: f.ExpiresAt, Records: []string{rec.ID}, EndedAt: now,
	}
}

// getFlag: GET /v1/flags/{id}. The member that placed the flag sees all
// of it; another sees what a check would show it: the flag's state and the
// signed records it is entitled to, but not the subject, the consent
// reference or the police report.
func (h *Hub) getFlag(c *gin.Context) {
	m := member(c)
	f, err := h.store.Flag(c.Param("id"))
	if errors.Is(err, store.ErrNotFound) {
		h.fail(c, problemf(protocol.ProblemNotFound, "no flag %q", c.Param("id")))
		return
	}
	if err != nil {
		h.internal(c, "read flag", err)
		return
	}
	recs, err := h.store.Records(f.Records)
	if err != nil {
		h.internal(c, "read flag records", err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"flag": flagViewFor(m, f, h.now()), "records": entitledJWS(m, recs)})
}
