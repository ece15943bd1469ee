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
}

// A Health is the answer of /healthz ("ok": the process is up) and of
// /readyz ("ready": it can read its store).
type Health struct {
	Status string `json:"status"`
}
