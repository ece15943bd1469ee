package api

import (
	"crypto/ed25519"

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
	Token             protocol.TokenPublicKey `json:"token"`
	SigningAlgorithms []protocol.Algorithm    `json:"signing_algorithms"`
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
}
