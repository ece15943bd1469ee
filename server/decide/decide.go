// Package decide is the hub's decision layer: the rules of every change to
// the hub's state, with no HTTP and no storage. Each decision takes the
// member who asks, the verified submission or request, the state the hub
// read for it, the [Policy] and the time, and returns either the typed
// command that makes the change (package state), its records signed, or
// the problem (RFC 9457, [protocol.Problem]) that refuses it. The hub's
// handlers are decode → decide → apply → encode; its background jobs
// decide the same way.
//
// Decisions are plain functions of their inputs, apart from the ids, salts,
// secrets and signatures a [Decider] makes, so the rules (how long a flag
// lasts, which thaw windows are allowed, what a lift erases, who may see
// what) are tested in tables here, without a server.
//
// A decision returns an error that is a *protocol.Problem when the request
// is refused, and any other error when the hub failed (a record could not
// be signed): the handler answers 500 and logs that one.
//
// # An example
//
//	f, _ := store.Flag(id)                                // the state
//	cmd, err := d.ThawFlag(member, sub, hash, f, now)      // the decision
//	var p *protocol.Problem
//	if errors.As(err, &p) { /* answer the problem */ }
//	res, err := store.Apply(cmd)                           // the change
package decide

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/sparr-dev/sparr/consent"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
)

// Hub is the actor of the hub's own commands (expiry, reminders, erasure
// tombstones) in the exchange log.
const Hub = "hub"

// A Policy is what the hub allows. Zero fields mean the defaults of
// [DefaultPolicy].
type Policy struct {
	// StandardFlag is how long a standard flag lasts, and the longest a
	// member may ask for.
	StandardFlag time.Duration
	// MaxExtendedFlag is the longest an extended flag may last.
	MaxExtendedFlag time.Duration
	// MaxThaw is the longest thaw window.
	MaxThaw time.Duration
	// MaxThawAhead is how far ahead a thaw may start.
	MaxThawAhead time.Duration
	// Reminder is how long before expiry the origin member is reminded.
	Reminder time.Duration
	// SuspicionLegalBasis enables suspicion sharing under the named legal
	// basis (data on criminal offences, GDPR Art. 10). Empty disables it.
	SuspicionLegalBasis string
	// SuspicionRetention is how long a suspicion is kept.
	SuspicionRetention time.Duration
	// FeedRetention is how long events stay in the feed; a member away
	// longer takes a snapshot.
	FeedRetention time.Duration
	// SecretOverlap is how long a rotated-out webhook secret keeps
	// signing.
	SecretOverlap time.Duration
	// Quotas are every member's limits unless its own say otherwise.
	Quotas api.Quotas
	// DetailsRetention is how long the details of a log entry (which
	// tokens a check named, which flag a placement made) are kept before
	// they are erased; the entry and its commitment stay.
	DetailsRetention time.Duration
	// ErasurePeriod is the period whose erasures are published together:
	// the tombstones of every erasure of one period are appended after it
	// ends, in the order of the entries erased.
	ErasurePeriod time.Duration
	// Consent is what the hub accepts as consent.
	Consent consent.Policy
	// DenialWindow is how long a consumer's denial of a check ("not me")
	// shows in every later check of the subject: about as long as a
	// credit or account application stays open.
	DenialWindow time.Duration
	// PayeeLegalBasis is the legal basis payee records are shared on, as
	// each record states it; PayeeThreshold the fewest of a member's own
	// customers whose reports let it report a payee; PayeeRetention how
	// long after its last report a payee record counts before the jobs
	// delete it, and how long after its outcome a closed recall is kept.
	// See docs/payee-fraud.md.
	PayeeLegalBasis string
	PayeeThreshold  int
	PayeeRetention  time.Duration
	// PayeeBanks maps banks ([protocol.BankRef] in its text form,
	// "SE:500") to the member that holds their accounts, to which recall
	// requests for payees at that bank are routed.
	PayeeBanks map[string]string
	// ConsumerAuthMaxAge is how long before a member's request for a
	// consumer (history, access report, dispute) the consumer may have
	// authenticated.
	ConsumerAuthMaxAge time.Duration
	// DisputeAckDays is how many business days (Monday to Friday, UTC; no
	// public holidays) the member disputed has to acknowledge a dispute.
	DisputeAckDays int
	// DisputeResolveDays is how many days it has to resolve one.
	DisputeResolveDays int
	// AttestationDeadline is how long after an erasure record members have
	// to attest that they deleted what it named, before they are listed
	// for the operator and regulators.
	AttestationDeadline time.Duration
	// WithholdSuspicionsFromSubject keeps suspicions out of a consumer's
	// history and access report, where the deployment's legal basis for
	// them restricts the subject's access (GDPR Art. 23, national law on
	// crime prevention). By default the consumer sees that a suspicion
	// exists, who reported it, its category and how to contest it.
	WithholdSuspicionsFromSubject bool
}

const day = 24 * time.Hour

// DefaultPolicy returns the defaults of every [Policy] field: standard
// flags of a year, extended flags of up to five years, thaws of up to 72
// hours starting up to 30 days ahead, a reminder 30 days before expiry,
// suspicions kept two years (when enabled: no legal basis by default), a
// feed of 30 days, rotated webhook secrets signing for 24 hours more,
// consent.DefaultPolicy, log details kept five years, erasures published
// once a day, denials of checks shown in checks for 30 days, consumer
// authentications accepted for 15 minutes, disputes acknowledged within 5
// business days and resolved within 30 days, erasures attested within 7
// days, and per member 10 tokens a second, 50 000 tokens and 256 MiB
// of stored log a day. docs/threat-model.md says why.
func DefaultPolicy() Policy {
	return Policy{
		StandardFlag:        365 * day,
		MaxExtendedFlag:     1826 * day,
		MaxThaw:             72 * time.Hour,
		MaxThawAhead:        30 * day,
		Reminder:            30 * day,
		SuspicionRetention:  730 * day,
		FeedRetention:       30 * day,
		SecretOverlap:       24 * time.Hour,
		Consent:             consent.DefaultPolicy(),
		Quotas:              api.Quotas{TokensPerSecond: 10, TokensPerDay: 50_000, StoredBytesPerDay: 256 << 20},
		DetailsRetention:    1826 * day,
		ErasurePeriod:       day,
		DenialWindow:        30 * day,
		PayeeLegalBasis:     DefaultPayeeLegalBasis,
		PayeeThreshold:      DefaultPayeeThreshold,
		PayeeRetention:      DefaultPayeeRetention,
		ConsumerAuthMaxAge:  15 * time.Minute,
		DisputeAckDays:      5,
		DisputeResolveDays:  30,
		AttestationDeadline: 7 * day,
	}
}

// WithDefaults returns p with every zero field set to its default.
func (p Policy) WithDefaults() Policy {
	def := DefaultPolicy()
	for _, f := range []struct{ v, d *time.Duration }{
		{&p.StandardFlag, &def.StandardFlag}, {&p.MaxExtendedFlag, &def.MaxExtendedFlag}, {&p.MaxThaw, &def.MaxThaw},
		{&p.MaxThawAhead, &def.MaxThawAhead}, {&p.Reminder, &def.Reminder}, {&p.SuspicionRetention, &def.SuspicionRetention},
		{&p.FeedRetention, &def.FeedRetention}, {&p.SecretOverlap, &def.SecretOverlap},
		{&p.DetailsRetention, &def.DetailsRetention}, {&p.ErasurePeriod, &def.ErasurePeriod},
		{&p.DenialWindow, &def.DenialWindow},
		{&p.PayeeRetention, &def.PayeeRetention},
		{&p.ConsumerAuthMaxAge, &def.ConsumerAuthMaxAge}, {&p.AttestationDeadline, &def.AttestationDeadline},
	} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	if p.PayeeLegalBasis == "" {
		p.PayeeLegalBasis = def.PayeeLegalBasis
	}
	if p.PayeeThreshold == 0 {
		p.PayeeThreshold = def.PayeeThreshold
	}
	if p.DisputeAckDays == 0 {
		p.DisputeAckDays = def.DisputeAckDays
	}
	if p.DisputeResolveDays == 0 {
		p.DisputeResolveDays = def.DisputeResolveDays
	}
	p.Quotas = fillQuotas(p.Quotas, def.Quotas)
	return p
}

// A Decider decides changes to the hub's state. Issuer and Sign are
// required; Policy is used as given (see [Policy.WithDefaults]).
type Decider struct {
	// Issuer is the hub's URL, the "iss" of its records.
	Issuer string
	Policy Policy
	// Sign signs a record with the hub's active record-signing key.
	Sign func(*protocol.Record) ([]byte, error)
	// TokenEpoch is the epoch of the tokens the hub makes; a token of
	// another epoch matches nothing and is refused.
	TokenEpoch uint32
	// AllowInsecureURLs lets members register key sets served over plain
	// HTTP (development and tests only).
	AllowInsecureURLs bool
	// Rand is the source of salts and webhook secrets; nil means
	// crypto/rand.
	Rand io.Reader
	// NewID returns a new record, flag, suspicion or check id; nil means
	// a UUIDv7, time-ordered so that ids sort by creation.
	NewID func() string
	// Peers, if set, returns the peered hubs (members with role peer) a
	// record of event type t about subjects, addressed to audience ("" for
	// every member entitled by role), goes to under each peer's policy.
	// Nil: the hub delivers to no peer.
	Peers func(t protocol.EventType, audience string, subjects []protocol.Token) []string
}

func (d *Decider) id() string {
	if d.NewID != nil {
		return d.NewID()
	}
	return uuid.Must(uuid.NewV7()).String()
}

func (d *Decider) rand() io.Reader {
	if d.Rand != nil {
		return d.Rand
	}
	return rand.Reader
}

// salt returns 32 random bytes for a log commitment.
func (d *Decider) salt() []byte {
	b := make([]byte, 32)
	if _, err := io.ReadFull(d.rand(), b); err != nil {
		panic(fmt.Sprintf("decide: reading randomness: %v", err))
	}
	return b
}

// sign makes and signs a record of ev about subjects, for txn, issued at
// at. audience limits it to one member ("" for all entitled); ref names
// the flag or suspicion it belongs to.
func (d *Decider) sign(txn string, subjects []protocol.Token, audience, ref string, ev protocol.Event, at time.Time) (*state.Record, error) {
	texts := make([]string, len(subjects))
	for i, t := range subjects {
		texts[i] = t.String()
	}
	var subject *protocol.SubjectID
	if len(subjects) > 0 {
		subject = protocol.SubjectOf(subjects...)
	}
	rec, err := d.signAbout(txn, subject, audience, ev, at)
	if err != nil {
		return nil, err
	}
	rec.Subjects, rec.Ref = texts, ref
	if d.Peers != nil && len(subjects) > 0 {
		rec.Peers = d.Peers(ev.EventType(), audience, subjects)
	}
	return rec, nil
}

// signAbout signs a record of ev about subject, which is not a token (a
// stream) or none, for audience ("" for every member entitled by role).
func (d *Decider) signAbout(txn string, subject *protocol.SubjectID, audience string, ev protocol.Event, at time.Time) (*state.Record, error) {
	r := &protocol.Record{Issuer: d.Issuer, IssuedAt: at, ID: d.id(), Txn: txn, Subject: subject, Event: ev}
	jws, err := d.Sign(r)
	if err != nil {
		return nil, fmt.Errorf("sign %s record: %w", ev.EventType().Short(), err)
	}
	return &state.Record{ID: r.ID, Type: ev.EventType(), Audience: audience, IssuedAt: at, JWS: string(jws)}, nil
}

// head is a command's head: its time, actor and log entry, committing to
// details (a value encoded as JSON) if there are any, indexed under
// subjects.
func (d *Decider) head(actor string, action protocol.LogAction, now time.Time, details any, subjects []string, attrs ...protocol.LogAttr) state.Head {
	h := state.Head{At: now, Actor: actor, Entry: state.Entry{Action: action, Subjects: subjects, Attrs: attrs}}
	if details != nil {
		h.Entry.Salt, h.Entry.Details = d.salt(), encode(details)
	}
	return h
}

// encode is v as JSON; the values decisions commit to always encode.
func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("decide: encoding %T: %v", v, err))
	}
	return b
}

// second is t in UTC, to the second: the time of records, whose times are
// whole seconds.
func second(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// checkToken refuses a token of another epoch than the hub's: it could
// never match anything.
func (d *Decider) checkToken(field string, t protocol.Token) *protocol.Problem {
	if t.Epoch != d.TokenEpoch {
		return TokenProblem(field, fmt.Errorf("token is of epoch %d, but this hub makes epoch %d tokens; tokenize again", t.Epoch, d.TokenEpoch))
	}
	return nil
}

func parseTokens(texts []string) ([]protocol.Token, error) {
	out := make([]protocol.Token, len(texts))
	for i, s := range texts {
		t, err := protocol.ParseToken(s)
		if err != nil {
			return nil, err
		}
		out[i] = t
	}
	return out, nil
}
