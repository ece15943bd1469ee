package api

import (
	"crypto/ed25519"
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// ConfigurationPath is where the hub serves its [Configuration], without
// authentication.
const ConfigurationPath = "/.well-known/sparr-configuration"

// A Configuration is the hub's discovery document: everything a member
// needs to talk to the hub and check what it signs.
type Configuration struct {
	// Issuer is the hub's URL: the "iss" of its records and the "aud" of
	// the member's bearer tokens and submissions.
	Issuer string `json:"issuer"`
	// JWKSURI is where the hub publishes its record-signing keys, retired
	// ones included.
	JWKSURI string `json:"jwks_uri"`
	// Endpoints names the main routes by purpose ("tokens", "flags",
	// "check", …) with their URLs.
	Endpoints       map[string]string         `json:"endpoints"`
	IdentifierTypes []protocol.IdentifierType `json:"identifier_types"`
	// Token is the hub's OPRF public key of the current epoch.
	Token protocol.TokenPublicKey `json:"token"`
	// HomeTokens are the keys of peered hubs that are home to identifier
	// types of other countries: this hub relays token requests for those
	// types to them ([Configuration.TokenKeyFor]). Absent on a hub that
	// relays nothing.
	HomeTokens        []HomeToken          `json:"home_tokens,omitempty"`
	SigningAlgorithms []protocol.Algorithm `json:"signing_algorithms"`
	// WebhookPublicKey is the hub's Ed25519 key of v1a webhook signatures
	// ([Configuration.WebhookKey] decodes it).
	WebhookPublicKey    string                       `json:"webhook_public_key"`
	Log                 LogInfo                      `json:"log"`
	Purposes            []string                     `json:"purposes"`
	Outcomes            []string                     `json:"outcomes"`
	SuspicionCategories []protocol.SuspicionCategory `json:"suspicion_categories"`
	SuspicionsEnabled   bool                         `json:"suspicions_enabled"`
	Policy              Policy                       `json:"policy"`
}

// WebhookKey decodes WebhookPublicKey.
func (c *Configuration) WebhookKey() (ed25519.PublicKey, error) {
	return protocol.ParseWebhookPublicKey(c.WebhookPublicKey)
}

// LogInfo names the hub's exchange log and the key its checkpoints are
// signed with, as a note verifier key ("<origin>+<hash>+<key>").
type LogInfo struct {
	Origin    string `json:"origin"`
	PublicKey string `json:"public_key"`
	// Monitoring is the URL prefix of the log as c2sp.org/tlog-tiles
	// serves it, ending in "/": its checkpoint is <prefix>checkpoint and
	// its hash tiles <prefix>tile/<L>/<N>, both public.
	Monitoring string `json:"monitoring"`
	// Witnesses are the witnesses the hub asks to cosign its checkpoints
	// (c2sp.org/tlog-witness). A verifier should pin witness keys it
	// trusts for itself, not take them from the hub it checks.
	Witnesses []Witness `json:"witnesses"`
}

// A Witness is a witness that cosigns the hub's checkpoints: its name,
// the URL prefix of its tlog-witness API (add-checkpoint is under it), and
// its note verifier key ("<name>+<hash>+<key>").
type Witness struct {
	Name      string `json:"name"`
	URL       string `json:"url"`
	PublicKey string `json:"public_key"`
}

// A WitnessStatus is how the hub's exchange with one witness stands
// (GET /v1/log/witnesses).
type WitnessStatus struct {
	Witness
	// CosignedSize is the size of the latest checkpoint the witness
	// cosigned, if any.
	CosignedSize *uint64 `json:"cosigned_size,omitempty"`
	// CosignedAt is when the hub received that cosignature.
	CosignedAt *time.Time `json:"cosigned_at,omitempty"`
	// Failures counts the attempts that failed since the last success;
	// LastError says why the last one failed, and NextAttempt when the
	// hub tries again.
	Failures    int        `json:"failures"`
	LastError   string     `json:"last_error,omitempty"`
	NextAttempt *time.Time `json:"next_attempt,omitempty"`
}

// WitnessesStatus answers GET /v1/log/witnesses: the latest checkpoint's
// size and each configured witness's status.
type WitnessesStatus struct {
	CheckpointSize uint64          `json:"checkpoint_size"`
	Witnesses      []WitnessStatus `json:"witnesses"`
}

// A Policy is the limits the hub holds submissions to.
type Policy struct {
	StandardFlagDays      int `json:"standard_flag_days"`
	MaxExtendedFlagDays   int `json:"max_extended_flag_days"`
	MaxThawHours          int `json:"max_thaw_hours"`
	MaxThawAheadDays      int `json:"max_thaw_ahead_days"`
	SubmissionMaxAgeSecs  int `json:"submission_max_age_seconds"`
	BearerMaxLifetimeSecs int `json:"bearer_max_lifetime_seconds"`
	// MaxTokensPerRequest bounds the identifiers of one token request
	// and the tokens of one check; at most protocol.MaxTokenBatch.
	MaxTokensPerRequest    int `json:"max_tokens_per_request"`
	SuspicionRetentionDays int `json:"suspicion_retention_days"`
	// ConsumerAuthMaxAgeSecs is how long after a consumer authenticated
	// a member may act for them.
	ConsumerAuthMaxAgeSecs int `json:"consumer_auth_max_age_seconds"`
	// DisputeAckBusinessDays and DisputeResolveDays are the deadlines of
	// the member a dispute is addressed to.
	DisputeAckBusinessDays int `json:"dispute_ack_business_days"`
	DisputeResolveDays     int `json:"dispute_resolve_days"`
	// AttestationDeadlineHours is how long members have to attest an
	// erasure.
	AttestationDeadlineHours int `json:"attestation_deadline_hours"`
	// SuspicionsWithheldFromSubject: consumers' histories and access
	// reports show no suspicions.
	SuspicionsWithheldFromSubject bool `json:"suspicions_withheld_from_subject"`
}

// A Health is the answer of /healthz ("ok": the process is up) and of
// /readyz ("ready": it can read its store).
type Health struct {
	Status string `json:"status"`
	// Reason says, on a replicated hub's node, why it can serve writes:
	// "leader", or "follower of n1".
	Reason string `json:"reason,omitempty"`
}
