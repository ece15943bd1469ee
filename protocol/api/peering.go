package api

import (
	"fmt"

	"github.com/sparr-dev/sparr/protocol"
)

// A PeerTokenRequest is what a hub sends the home hub of an identifier type
// (POST /v1/peering/tokens) to have one of its members' blinded identifiers
// evaluated: the member's token request as the member sent it, and the
// member's id at the relaying hub, which the home hub logs beside the
// relaying hub's own id.
type PeerTokenRequest struct {
	protocol.TokenRequest
	// Member is the id, at the relaying hub, of the member that asked.
	Member string `json:"member"`
}

// A PeerCheckRequest is what a hub sends the home hub of an identifier
// type (POST /v1/peering/check) to have one of its members' checks of
// tokens of that type answered from the home hub's records: the member's
// check as the member sent it, and the member's id at the relaying hub.
type PeerCheckRequest struct {
	CheckRequest
	// Member is the id, at the relaying hub, of the member that asked.
	Member string `json:"member"`
	// CheckID, if set, is the relaying hub's id for the check, which the
	// home hub keeps it by ("<peer>.<check id>"), so that the relaying hub
	// can report its outcome (POST /v1/peering/outcome).
	CheckID string `json:"check_id,omitempty"`
}

// A PeerOutcomeRequest is what a hub sends the home hub (POST
// /v1/peering/outcome) to report the outcome of a check it relayed there
// for one of its members: its own id for the check, as it sent it in
// [PeerCheckRequest.CheckID], the member, and the outcome.
type PeerOutcomeRequest struct {
	CheckID string `json:"check_id"`
	Member  string `json:"member"`
	Outcome string `json:"outcome"`
}

// Validate checks the form of Member and CheckID; the outcome is checked
// by the home hub as any outcome is.
func (r *PeerOutcomeRequest) Validate() error {
	if err := validateID(r.Member); err != nil {
		return fmt.Errorf("member: %w", err)
	}
	if err := validateCheckID(r.CheckID); err != nil {
		return fmt.Errorf("check_id: %w", err)
	}
	return nil
}

// Validate checks the form of Member, as [PeerTokenRequest.Validate] does;
// the check itself is checked by the home hub as any check is.
func (r *PeerCheckRequest) Validate() error {
	if err := validateID(r.Member); err != nil {
		return fmt.Errorf("member: %w", err)
	}
	if r.CheckID != "" {
		if err := validateCheckID(r.CheckID); err != nil {
			return fmt.Errorf("check_id: %w", err)
		}
	}
	return nil
}

// validateCheckID checks the form of a relaying hub's check id: 1 to 64
// characters of a-z, 0-9 and '-' (a UUID, as hubs make them).
func validateCheckID(id string) error {
	if id == "" || len(id) > 64 {
		return invalid("check_id", "%d characters; want 1 to 64", len(id))
	}
	for i, c := range id {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return invalid("check_id", "%q has %q at byte %d; use only a-z, 0-9 and '-'", id, c, i)
		}
	}
	return nil
}

// A HomeToken is the token key of another hub, home to some identifier
// types, that this hub relays token requests to: a member blinds those
// types for Token's epoch and checks the evaluation's proof against Token.
type HomeToken struct {
	// Jurisdiction is the home hub's country (ISO 3166-1 alpha-2).
	Jurisdiction string `json:"jurisdiction"`
	// Types are the identifier types whose home the hub is.
	Types []protocol.IdentifierType `json:"types"`
	// Token is the home hub's OPRF public key, as this hub's operator
	// registered it.
	Token protocol.TokenPublicKey `json:"token"`
	// Issuer is the home hub's issuer URL: checks of these types are
	// answered there, and their flag records are signed with the keys of
	// its JWKS (<issuer>/.well-known/jwks.json).
	Issuer string `json:"issuer"`
}

// TokenKeyFor returns the token key that identifiers of type t are
// evaluated under when a member asks this hub: the home hub's key for a
// type listed in HomeTokens, else the hub's own.
func (c *Configuration) TokenKeyFor(t protocol.IdentifierType) protocol.TokenPublicKey {
	for _, h := range c.HomeTokens {
		for _, ht := range h.Types {
			if ht == t {
				return h.Token
			}
		}
	}
	return c.Token
}

// Validate checks the form of Member, a member id as [MemberRequest] has
// it; the token request itself is checked by the evaluating key. Errors
// wrap [ErrInvalidMember].
func (r *PeerTokenRequest) Validate() error {
	if err := validateID(r.Member); err != nil {
		return fmt.Errorf("member: %w", err)
	}
	return nil
}

// A PeerSubmission is what a hub sends the home hub of the identifiers a
// member's write names (POST /v1/peering/submissions): the member's signed
// submission, byte for byte as the member sent it, and the relaying hub's
// countersignature over it ([protocol.Countersignature]). The home hub
// verifies the countersignature, then the submission, before it reads
// either's claims.
type PeerSubmission struct {
	// Submission is the member's compact JWS.
	Submission string `json:"submission"`
	// Countersignature is the relaying hub's compact JWS.
	Countersignature string `json:"countersignature"`
}
