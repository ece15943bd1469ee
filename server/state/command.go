package state

import (
	"encoding/json"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// A Command is one decided change to the hub's state: one of the types of
// this package. See the package documentation.
type Command interface {
	// Kind names the command's type in its encoding.
	Kind() Kind
	// Header returns the command's [Head], or nil for a kind without one.
	Header() *Head
	isCommand()
}

// A Kind names a type of [Command] in the encoding.
type Kind string

// The kinds of command.
const (
	KindPlaceFlag       Kind = "place-flag"
	KindChangeFlag      Kind = "change-flag"
	KindEndFlag         Kind = "end-flag"
	KindReportSuspicion Kind = "report-suspicion"
	KindEndSuspicion    Kind = "end-suspicion"
	KindEraseSubject    Kind = "erase-subject"
	KindAddCheck        Kind = "add-check"
	KindSetOutcome      Kind = "set-outcome"
	KindPutMember       Kind = "put-member"
	KindChangeEndpoint  Kind = "change-endpoint"
	KindRecordDelivery  Kind = "record-delivery"
	KindPruneFeed       Kind = "prune-feed"
	KindPutCheckpoint   Kind = "put-checkpoint"
	KindNote            Kind = "note"
	KindEvaluateTokens  Kind = "evaluate-tokens"
	KindExpireDetails   Kind = "expire-details"
	KindPublishErasures Kind = "publish-erasures"
	KindPruneReplays    Kind = "prune-replays"
	KindAddCosignature  Kind = "add-cosignature"
	KindReplicaChecks   Kind = "replica-checks"
	KindDenyCheck       Kind = "deny-check"
	KindPutDispute      Kind = "put-dispute"
	KindAttestErasure   Kind = "attest-erasure"
)

// A Head is what every command but [PutCheckpoint] and [PruneReplays]
// carries: when the hub decided it, at whose request, and the
// exchange-log entry applying it appends.
type Head struct {
	// At is when the hub decided the command. The log entry takes this
	// time, or the last entry's if that is later: entry times never go
	// backwards.
	At time.Time `json:"at"`
	// Actor is the member who asked, or "hub" for the hub's own jobs.
	Actor string `json:"actor"`
	Entry Entry  `json:"entry"`
	// Quota, if set, is the actor's allowance of stored bytes that
	// applying the command charges; over it, nothing is written.
	Quota *Quota `json:"quota,omitempty"`
}

// Header returns the command's head: the command itself for every kind
// that embeds one.
func (h *Head) Header() *Head { return h }

// A Quota is a member's allowance of stored bytes on one day (UTC), and
// what a command charges against it. A command that would take the day's
// total over Limit conflicts with the quota: nothing is written, and the
// store's result says so.
type Quota struct {
	Member string `json:"member"`
	Day    string `json:"day"` // YYYY-MM-DD, UTC
	Bytes  int64  `json:"bytes"`
	Limit  int64  `json:"limit"`
}

// An Entry is the exchange-log entry a command appends.
type Entry struct {
	// Action is the entry's action; a command without one (a delivery's
	// retry) appends no entry.
	Action protocol.LogAction `json:"action,omitempty"`
	// Result is the entry's result: "" means "ok".
	Result string `json:"result,omitempty"`
	// Salt and Details are the entry's commitment: SHA-256(Salt ‖
	// Details). Details are kept beside the log until erased. An entry
	// without Details commits to nothing.
	Salt    []byte `json:"salt,omitempty"`
	Details []byte `json:"details,omitempty"`
	// Subjects are the tokens the Details name. The entry is indexed under
	// each, so that an erasure of a subject finds every entry whose
	// details would link to it.
	Subjects []string           `json:"subjects,omitempty"`
	Attrs    []protocol.LogAttr `json:"attrs,omitempty"`
}

// A SubmissionRef identifies a member's signed submission: its jti and the
// SHA-256 of its signed bytes. A command with one is applied once per jti:
// the same bytes again are answered with the stored outcome, other bytes
// under the same jti are refused.
type SubmissionRef struct {
	ID   string `json:"id"`
	Hash []byte `json:"hash"`
}

// Erase names personal data to delete: records (and the details of their
// log entries), a consent, further log entries' details, and the details of
// every entry indexed under one of Subjects (see [Entry.Subjects]) — with
// Actions set, only of entries with one of those actions. Basis is the
// reason, which each tombstone entry states.
type Erase struct {
	Records    []string             `json:"records,omitempty"`
	Consent    string               `json:"consent,omitempty"`
	LogEntries []uint64             `json:"log_entries,omitempty"`
	Subjects   []string             `json:"subjects,omitempty"`
	Actions    []protocol.LogAction `json:"actions,omitempty"`
	Basis      string               `json:"basis"`
	// Disputes, with Subjects, clears from every dispute about one of them
	// its subjects, the consumer's statement and authentication: a
	// subject's erasure.
	Disputes bool `json:"disputes,omitempty"`
}

// A PlaceFlag places a new flag (Flag, version 1) with its record and the
// consumer's consent. If an active flag already protects the subject,
// applying it writes only its log entry, as flag-already-active, and the
// submission's outcome: that flag. A flag past its expiry that the expiry
// job has not ended must be ended by Lapsed, in the same transaction, or
// the command conflicts.
type PlaceFlag struct {
	Head
	Submission SubmissionRef `json:"submission"`
	Record     *Record       `json:"record"`
	Flag       *Flag         `json:"flag"`
	// Consent is the consent record (consent.Record as JSON), kept under
	// the flag's id.
	Consent json.RawMessage `json:"consent"`
	Lapsed  *EndFlag        `json:"lapsed,omitempty"`
	// Active, when set, is the id of the active flag that already
	// protects the subject: the placement is answered with that flag
	// (flag-already-active), and Record, Flag, Consent and Lapsed are
	// empty. The store applies it only while that flag is active.
	Active string `json:"active,omitempty"`
}

// A ChangeFlag moves an active flag to its next version (Flag.Version is
// the stored version plus one) with a new record: an extension, a thaw, or
// the expiry reminder (which has no Submission).
type ChangeFlag struct {
	Head
	Submission *SubmissionRef `json:"submission,omitempty"`
	Record     *Record        `json:"record"`
	Flag       *Flag          `json:"flag"`
}

// An EndFlag ends a flag (a lift, or an expiry without Submission): its
// last version, its last record, and what the end erases.
type EndFlag struct {
	Head
	Submission *SubmissionRef `json:"submission,omitempty"`
	Record     *Record        `json:"record"`
	Flag       *Flag          `json:"flag"`
	Erase      Erase          `json:"erase"`
}

// A ReportSuspicion shares a new suspicion (version 1) with its records:
// the full one for its reporter first, then the hit record every checking
// member may see.
type ReportSuspicion struct {
	Head
	Submission SubmissionRef `json:"submission"`
	Records    []*Record     `json:"records"`
	Suspicion  *Suspicion    `json:"suspicion"`
}

// An EndSuspicion ends a suspicion (a retraction, or an expiry without
// Submission), erasing its records.
type EndSuspicion struct {
	Head
	Submission *SubmissionRef `json:"submission,omitempty"`
	Record     *Record        `json:"record"`
	Suspicion  *Suspicion     `json:"suspicion"`
	Erase      Erase          `json:"erase"`
}

// An EraseSubject erases everything the hub holds about a subject: its
// flag and suspicions end (Flag and Suspicions are their last versions),
// its payee record goes, and Erase deletes the rest. Records tell the
// members that hold something about the subject to erase it: every member
// when it had a flag or a payee record, each suspicion's reporter
// otherwise.
type EraseSubject struct {
	Head
	Records    []*Record    `json:"records"`
	Flag       *Flag        `json:"flag,omitempty"`
	Suspicions []*Suspicion `json:"suspicions,omitempty"`
	Erase      Erase        `json:"erase"`
	// Payee is the subject's payee record as stored, which applying
	// deletes (its records are among Erase.Records); the store applies
	// the command only while that version is the stored one.
	Payee *Payee `json:"payee,omitempty"`
	// Recalls are the recalls naming the subject, scrubbed (see
	// [Recall.Scrubbed]); the store applies the command only while the
	// version before each is the stored one.
	Recalls []*Recall `json:"recalls,omitempty"`
}

// An AddCheck keeps a new check, so that its member can report the
// outcome, with an access notice for each flagged subject it named (each
// with its subject-checked record for the flag's origin).
type AddCheck struct {
	Head
	Check   *Check          `json:"check"`
	Notices []*AccessNotice `json:"notices,omitempty"`
}

// A ReplicaChecks logs the checks a member's replica answered, reported
// in a batch, with an access notice for each that named a flagged
// subject, as an [AddCheck] has.
type ReplicaChecks struct {
	Head
	Notices []*AccessNotice `json:"notices,omitempty"`
}

// A DenyCheck records the consumer's denial of a check, sent by the
// flag's origin: the notice of that check must exist, undenied, and the
// flag still be the subject's active one. Its record goes to the member
// that made the check.
type DenyCheck struct {
	Head
	Submission SubmissionRef `json:"submission"`
	Denial     *Denial       `json:"denial"`
}

// A SetOutcome records a check's outcome; the check must exist without
// one.
type SetOutcome struct {
	Head
	Check *Check `json:"check"`
}

// A PutMember creates a member (Create: there must be none with its id)
// or replaces one (there must be one).
type PutMember struct {
	Head
	Member *api.Member `json:"member"`
	Create bool        `json:"create,omitempty"`
}

// A ChangeEndpoint changes a member's webhook endpoint, with the
// verification event's Record when the change needs one.
type ChangeEndpoint struct {
	Head
	Change EndpointChange `json:"change"`
	Record *Record        `json:"record,omitempty"`
}

// A RecordDelivery records the outcome of a delivery attempt.
type RecordDelivery struct {
	Head
	Update DeliveryUpdate `json:"update"`
}

// A PruneFeed drops from the feed the events of records issued before
// Before, oldest first, at most Limit of them (with the events of records
// erased since, up to the last record dropped), and deletes those records
// unless something still needs them: an active flag or suspicion that
// holds them, or a delivery of them still queued (such a record goes once
// its last delivery is recorded). Its log entry gets the attributes count,
// the events dropped, and floor, the oldest cursor the feed still serves.
// When there is nothing to drop, applying it writes nothing, not even its
// log entry.
type PruneFeed struct {
	Head
	Before time.Time `json:"before"`
	Limit  int       `json:"limit"`
}

// A PutCheckpoint keeps a signed checkpoint of the tree of the log's first
// Size entries, whose root hash is Root. Applying it checks that Root is
// the tree's and keeps Note unless a checkpoint of that size is kept
// already (then it conflicts and writes nothing): every checkpoint
// published stays, and none is replaced. It appends no log entry.
type PutCheckpoint struct {
	Size uint64    `json:"size"`
	Root tlog.Hash `json:"root"`
	Note []byte    `json:"note"`
}

// An AddCosignature keeps a witness's cosignature of the checkpoint of
// Size (c2sp.org/tlog-cosignature): Witness names the witness's key
// ("<name>+<hash>"), Line is its signature line, newline excluded.
// Applying it needs that checkpoint kept; a cosignature of it by the same
// witness kept already makes it conflict (nothing written): the first one
// stays. It appends no log entry.
type AddCosignature struct {
	Size    uint64 `json:"size"`
	Witness string `json:"witness"`
	Line    string `json:"line"`
}

// A Note only appends its log entry: a request for a suspicion's
// details, a backup, a refused request.
type Note struct {
	Head
}

// An EvaluateTokens records a member's batch of Count token evaluations
// (evaluated, not yet returned) against its daily quota: on Day (UTC) the
// member may have at most Limit evaluated. Within the quota, applying it
// counts the batch and appends its entry (tokens ok); over it, it appends
// the entry rejected:token-quota-exceeded, counts nothing, and the store's
// result says the quota is spent.
type EvaluateTokens struct {
	Head
	Day   string `json:"day"`
	Count int64  `json:"count"`
	Limit int64  `json:"limit"`
}

// An ExpireDetails erases the details of log entries older than Before, at
// most Limit of them, oldest first, as their retention ends: their
// commitments stay, linked to nothing, and their tombstones are published
// with the next batch ([PublishErasures]). Its own entry (details-expired)
// counts them; with nothing to erase it writes nothing.
type ExpireDetails struct {
	Head
	Before time.Time `json:"before"`
	Limit  int       `json:"limit"`
}

// A PublishErasures appends the tombstones of every erasure made before
// Before and not yet published: one erased entry per log entry whose
// details went, in the order of those entries, whoever and whatever erased
// them. Publishing erasures in batches that mix every erasure of a period
// keeps a reader of the log from grouping one person's entries by the
// moment they were erased. With none pending it writes nothing.
type PublishErasures struct {
	Head
	Before time.Time `json:"before"`
}

// A PruneReplays forgets the outcomes of submissions accepted before
// Before, at most Limit of them: the hub refuses such submissions as too
// old by then, so it no longer needs them to answer a repeat. It appends
// no log entry.
type PruneReplays struct {
	Before time.Time `json:"before"`
	Limit  int       `json:"limit"`
}

func (*PlaceFlag) Kind() Kind       { return KindPlaceFlag }
func (*ChangeFlag) Kind() Kind      { return KindChangeFlag }
func (*EndFlag) Kind() Kind         { return KindEndFlag }
func (*ReportSuspicion) Kind() Kind { return KindReportSuspicion }
func (*EndSuspicion) Kind() Kind    { return KindEndSuspicion }
func (*EraseSubject) Kind() Kind    { return KindEraseSubject }
func (*AddCheck) Kind() Kind        { return KindAddCheck }
func (*SetOutcome) Kind() Kind      { return KindSetOutcome }
func (*PutMember) Kind() Kind       { return KindPutMember }
func (*ChangeEndpoint) Kind() Kind  { return KindChangeEndpoint }
func (*RecordDelivery) Kind() Kind  { return KindRecordDelivery }
func (*PruneFeed) Kind() Kind       { return KindPruneFeed }
func (*PutCheckpoint) Kind() Kind   { return KindPutCheckpoint }
func (*Note) Kind() Kind            { return KindNote }
func (*EvaluateTokens) Kind() Kind  { return KindEvaluateTokens }
func (*ExpireDetails) Kind() Kind   { return KindExpireDetails }
func (*PublishErasures) Kind() Kind { return KindPublishErasures }
func (*PruneReplays) Kind() Kind    { return KindPruneReplays }
func (*AddCosignature) Kind() Kind  { return KindAddCosignature }
func (*ReplicaChecks) Kind() Kind   { return KindReplicaChecks }
func (*DenyCheck) Kind() Kind       { return KindDenyCheck }

// Header returns nil: a checkpoint has no head.
func (*PutCheckpoint) Header() *Head { return nil }

// Header returns nil: pruning replays has no head.
func (*PruneReplays) Header() *Head { return nil }

// Header returns nil: a cosignature has no head.
func (*AddCosignature) Header() *Head { return nil }

func (*PlaceFlag) isCommand()       {}
func (*ChangeFlag) isCommand()      {}
func (*EndFlag) isCommand()         {}
func (*ReportSuspicion) isCommand() {}
func (*EndSuspicion) isCommand()    {}
func (*EraseSubject) isCommand()    {}
func (*AddCheck) isCommand()        {}
func (*SetOutcome) isCommand()      {}
func (*PutMember) isCommand()       {}
func (*ChangeEndpoint) isCommand()  {}
func (*RecordDelivery) isCommand()  {}
func (*PruneFeed) isCommand()       {}
func (*PutCheckpoint) isCommand()   {}
func (*Note) isCommand()            {}
func (*EvaluateTokens) isCommand()  {}
func (*ExpireDetails) isCommand()   {}
func (*PublishErasures) isCommand() {}
func (*PruneReplays) isCommand()    {}
func (*AddCosignature) isCommand()  {}
func (*ReplicaChecks) isCommand()   {}
func (*DenyCheck) isCommand()       {}

// newCommand returns a new, empty command of kind k, or nil for a kind
// this version does not know.
func newCommand(k Kind) Command {
	switch k {
	case KindPlaceFlag:
		return new(PlaceFlag)
	case KindChangeFlag:
		return new(ChangeFlag)
	case KindEndFlag:
		return new(EndFlag)
	case KindReportSuspicion:
		return new(ReportSuspicion)
	case KindEndSuspicion:
		return new(EndSuspicion)
	case KindEraseSubject:
		return new(EraseSubject)
	case KindAddCheck:
		return new(AddCheck)
	case KindSetOutcome:
		return new(SetOutcome)
	case KindPutMember:
		return new(PutMember)
	case KindChangeEndpoint:
		return new(ChangeEndpoint)
	case KindRecordDelivery:
		return new(RecordDelivery)
	case KindPruneFeed:
		return new(PruneFeed)
	case KindPutCheckpoint:
		return new(PutCheckpoint)
	case KindNote:
		return new(Note)
	case KindEvaluateTokens:
		return new(EvaluateTokens)
	case KindExpireDetails:
		return new(ExpireDetails)
	case KindPublishErasures:
		return new(PublishErasures)
	case KindPruneReplays:
		return new(PruneReplays)
	case KindAddCosignature:
		return new(AddCosignature)
	case KindReplicaChecks:
		return new(ReplicaChecks)
	case KindDenyCheck:
		return new(DenyCheck)
	case KindPutPayee:
		return new(PutPayee)
	case KindPutRecall:
		return new(PutRecall)
	case KindPutDispute:
		return new(PutDispute)
	case KindAttestErasure:
		return new(AttestErasure)
	case KindExpirePayee:
		return new(ExpirePayee)
	case KindExpireRecall:
		return new(ExpireRecall)
	case KindPutPeer:
		return new(PutPeer)
	case KindRelayEvent:
		return new(RelayEvent)
	case KindPeerCursor:
		return new(PeerCursor)
	}
	return nil
}

// Kinds returns every kind of command.
func Kinds() []Kind {
	return []Kind{KindPlaceFlag, KindChangeFlag, KindEndFlag, KindReportSuspicion, KindEndSuspicion, KindEraseSubject,
		KindAddCheck, KindSetOutcome, KindPutMember, KindChangeEndpoint, KindRecordDelivery, KindPruneFeed,
		KindPutCheckpoint, KindNote, KindEvaluateTokens, KindExpireDetails, KindPublishErasures, KindPruneReplays,
		KindAddCosignature, KindReplicaChecks, KindDenyCheck, KindPutPayee, KindPutRecall, KindPutDispute, KindAttestErasure,
		KindExpirePayee, KindExpireRecall,
		KindPutPeer, KindRelayEvent,
		KindPeerCursor}
}

// Submitted returns the submission a command carries, or nil.
func Submitted(c Command) *SubmissionRef {
	switch c := c.(type) {
	case *PlaceFlag:
		return &c.Submission
	case *ChangeFlag:
		return c.Submission
	case *EndFlag:
		return c.Submission
	case *ReportSuspicion:
		return &c.Submission
	case *EndSuspicion:
		return c.Submission
	case *DenyCheck:
		return &c.Submission
	case *PutPayee:
		return c.Submission
	case *PutRecall:
		return c.Submission
	case *PutDispute:
		return c.Submission
	case *AttestErasure:
		return &c.Submission
	}
	return nil
}
