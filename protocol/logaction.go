package protocol

// A LogAction names what an exchange-log entry records: the second word a
// regulator reads on every line. A log entry may carry an action this
// version does not list (a later hub's), which [ParseLogEntry] accepts as
// long as it has the form of one.
//
// Successful changes are named in the past tense (flag-placed); a refused
// request is logged under its route's action, in the present tense
// (flag-place), with result "rejected:<problem slug>". docs/regulator.md
// has the table of every action for regulators.
type LogAction string

// What members ask for, and the hub did.
const (
	LogTokens              LogAction = "tokens"               // identifiers tokenized: attrs type, count, epoch, and home for a batch relayed to a peer
	LogFlagPlaced          LogAction = "flag-placed"          // a flag placed
	LogFlagAlreadyActive   LogAction = "flag-already-active"  // a placement answered with the flag already on the subject
	LogFlagExtended        LogAction = "flag-extended"        // a flag's expiry moved later
	LogFlagThawed          LogAction = "flag-thawed"          // a thaw window set
	LogFlagLifted          LogAction = "flag-lifted"          // a flag ended at the consumer's request
	LogSuspicionReported   LogAction = "suspicion-reported"   // a police-reported suspicion shared
	LogSuspicionRetracted  LogAction = "suspicion-retracted"  // a suspicion withdrawn by its reporter
	LogSuspicionDetails    LogAction = "suspicion-details"    // a suspicion's details asked for: attr purpose
	LogCheck               LogAction = "check"                // a check: attrs purpose, tokens, verify, review
	LogReplicaCheck        LogAction = "replica-check"        // checks a member's replica answered, reported in a batch: attr count
	LogCheckOutcome        LogAction = "check-outcome"        // a check's outcome reported: attr outcome
	LogCheckDenied         LogAction = "check-denied"         // the consumer denied a check through the flag's origin: attrs checker, method, level
	LogPeerTokens          LogAction = "peer-tokens"          // identifiers tokenized for a peered hub's member: attrs type, count, epoch, member
	LogPeerCheck           LogAction = "peer-check"           // a check relayed by a peered hub for its member: attrs purpose, tokens, verify, review, member
	LogWriteRelayed        LogAction = "write-relayed"        // a member's signed write about another hub's identifiers, countersigned and relayed to their home hub: attrs request, home
	LogPeerEvent           LogAction = "peer-event"           // a record a peered hub delivered, taken to fan out (or refused by policy): attrs peer, home, type, hop
	LogSubjectHistory      LogAction = "subject-history"      // a consumer's history read by a member acting for them: attr method
	LogAccessReport        LogAction = "access-report"        // a signed access report (GDPR Art. 15) made for a member acting for a consumer: attr method
	LogDisputeOpened       LogAction = "dispute-opened"       // a consumer contested a suspicion or flag through a member: attrs respondent, method
	LogDisputeAcknowledged LogAction = "dispute-acknowledged" // the disputed member acknowledged a dispute
	LogDisputeResolved     LogAction = "dispute-resolved"     // a dispute upheld or rejected: attr outcome
	LogErasureAttested     LogAction = "erasure-attested"     // a member attested that it deleted what erasure records named: attr count

	LogEndpointRegistered    LogAction = "endpoint-registered"     // a webhook endpoint registered or changed: attr verification
	LogEndpointSecretRotated LogAction = "endpoint-secret-rotated" // an endpoint's signing secret rotated
	LogEndpointResumed       LogAction = "endpoint-resumed"        // a paused endpoint resumed
	LogEndpointRemoved       LogAction = "endpoint-removed"        // an endpoint removed by its member
	LogEndpointHeld          LogAction = "endpoint-held"           // an SSF stream paused by its receiver
	LogEndpointVerify        LogAction = "endpoint-verify"         // a verification event the receiver asked for sent

	LogPayeeReported  LogAction = "payee-reported"  // a member's report of a payee aggregated into its payee record: attrs customers, members
	LogPayeeContested LogAction = "payee-contested" // a payee record contested through the account holder's bank: attr reason

	LogRecallRequested    LogAction = "recall-requested"    // a recall routed to the member holding the payee account: attr to
	LogRecallAcknowledged LogAction = "recall-acknowledged" // a recall acknowledged by the holder: attrs from, after_ms
	LogRecallOutcome      LogAction = "recall-outcome"      // a recall's outcome reported by the holder: attrs from, outcome, after_ms
)

// What the hub does on its own, or records of delivery.
const (
	LogFlagExpired      LogAction = "flag-expired"      // a flag reached its expiry
	LogFlagExpiring     LogAction = "flag-expiring"     // a flag's origin reminded of its coming expiry: attr origin
	LogSuspicionExpired LogAction = "suspicion-expired" // a suspicion reached the end of its retention
	LogDisputeLapsed    LogAction = "dispute-lapsed"    // a dispute's deadline passed unanswered: attr missed
	LogPayeeExpired     LogAction = "payee-expired"     // a payee record reached the end of its retention and was deleted
	LogRecallExpired    LogAction = "recall-expired"    // a closed recall reached the end of its retention and was deleted
	LogFeedPruned       LogAction = "feed-pruned"       // events left the feed: attrs before, count, floor
	LogDetailsExpired   LogAction = "details-expired"   // log details at the end of their retention erased: attrs before, count
	LogDelivery         LogAction = "delivery"          // a webhook delivered (or refused by its receiver): attrs event, attempts, latency_ms
	LogEndpointPaused   LogAction = "endpoint-paused"   // an endpoint paused after its retry schedule ran out
	LogEndpointDisabled LogAction = "endpoint-disabled" // an endpoint disabled by its receiver's 410 Gone
	// LogErased is a tombstone: the details of the entry named by attr
	// index were erased, on attr basis.
	LogErased LogAction = "erased"
)

// What the operator does.
const (
	LogMemberAdded     LogAction = "member-added"
	LogMemberUpdated   LogAction = "member-updated"
	LogMemberSuspended LogAction = "member-suspended"
	LogMemberResumed   LogAction = "member-resumed"
	LogSubjectErased   LogAction = "subject-erased" // everything about a subject erased: attr basis
	LogBackup          LogAction = "backup"         // a hot backup of the data file taken
	// LogRollbackDeclared is a declared rollback (see [Rollback]): the hub
	// was restored to a tree that does not extend its last checkpoint,
	// and its operator said so; attrs reason, old_size, old_root,
	// new_size.
	LogRollbackDeclared LogAction = "rollback-declared"
	// LogPeerRegistered and LogPeerRemoved are a peered hub registered
	// through the operator API and removed: attrs peer, jurisdiction.
	LogPeerRegistered LogAction = "peer-registered"
	LogPeerRemoved    LogAction = "peer-removed"
	// LogClusterChanged is a change of a replicated hub's cluster by the
	// operator: attrs change (add, remove, transfer-leadership) and node.
	LogClusterChanged LogAction = "cluster-changed"
)

// The actions of routes, under which a refused request is logged.
const (
	LogFlagPlace         LogAction = "flag-place"
	LogFlagExtend        LogAction = "flag-extend"
	LogFlagThaw          LogAction = "flag-thaw"
	LogFlagLift          LogAction = "flag-lift"
	LogSuspicionReport   LogAction = "suspicion-report"
	LogSuspicionRetract  LogAction = "suspicion-retract"
	LogEndpointRegister  LogAction = "endpoint-register"
	LogMemberAdd         LogAction = "member-add"
	LogMemberUpdate      LogAction = "member-update"
	LogMemberSuspend     LogAction = "member-suspend"
	LogMemberResume      LogAction = "member-resume"
	LogSubjectErase      LogAction = "subject-erase"
	LogPayeeReport       LogAction = "payee-report"
	LogPayeeContest      LogAction = "payee-contest"
	LogRecallRequest     LogAction = "recall-request"
	LogRecallAcknowledge LogAction = "recall-acknowledge"
	LogRecallReport      LogAction = "recall-report"
	LogCheckDeny         LogAction = "check-deny"
	LogDisputeOpen       LogAction = "dispute-open"
	LogDisputeAnswer     LogAction = "dispute-answer"
	LogErasureAttest     LogAction = "erasure-attest"
	LogPeerRegister      LogAction = "peer-register"
	LogPeerRemove        LogAction = "peer-remove"
	// LogPeerSubmission is the action of the home hub's route for relayed
	// writes, under which it logs those it refuses before it knows what
	// they ask for (a countersignature that does not verify).
	LogPeerSubmission LogAction = "peer-submission"
	// A refused history or access report request is logged under
	// LogSubjectHistory or LogAccessReport.
	// A refused token batch, check, outcome or details request is logged
	// under LogTokens, LogPeerTokens, LogCheck, LogPeerCheck, LogCheckOutcome or
	// LogSuspicionDetails.
)

// LogActions returns every action this version writes, successes first,
// then the route actions of refusals.
func LogActions() []LogAction {
	return []LogAction{
		LogTokens, LogFlagPlaced, LogFlagAlreadyActive, LogFlagExtended, LogFlagThawed, LogFlagLifted,
		LogSuspicionReported, LogSuspicionRetracted, LogSuspicionDetails, LogCheck, LogReplicaCheck, LogCheckOutcome, LogCheckDenied,
		LogSubjectHistory, LogAccessReport, LogDisputeOpened, LogDisputeAcknowledged, LogDisputeResolved, LogErasureAttested,
		LogPeerTokens, LogPeerCheck, LogEndpointRegistered, LogEndpointSecretRotated, LogEndpointResumed, LogEndpointRemoved,
		LogEndpointHeld, LogEndpointVerify,
		LogFlagExpired, LogFlagExpiring, LogSuspicionExpired, LogDisputeLapsed, LogPayeeExpired, LogRecallExpired, LogFeedPruned, LogDetailsExpired, LogDelivery,
		LogEndpointPaused, LogEndpointDisabled, LogErased,
		LogMemberAdded, LogMemberUpdated, LogMemberSuspended, LogMemberResumed, LogSubjectErased, LogBackup, LogRollbackDeclared,
		LogFlagPlace, LogFlagExtend, LogFlagThaw, LogFlagLift, LogSuspicionReport, LogSuspicionRetract,
		LogEndpointRegister, LogMemberAdd, LogMemberUpdate, LogMemberSuspend, LogMemberResume, LogSubjectErase,
		LogCheckDeny,
		LogPayeeReported, LogPayeeContested, LogPayeeReport, LogPayeeContest,
		LogRecallRequested, LogRecallAcknowledged, LogRecallOutcome, LogRecallRequest, LogRecallAcknowledge, LogRecallReport,
		LogDisputeOpen, LogDisputeAnswer, LogErasureAttest,
		LogPeerRegistered, LogPeerRemoved, LogPeerRegister, LogPeerRemove,
		LogWriteRelayed, LogPeerSubmission,
		LogPeerEvent,
		LogClusterChanged,
	}
}
