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
}

// Validate checks the form of Member, as [PeerTokenRequest.Validate] does;
// the check itself is checked by the home hub as any check is.
func (r *PeerCheckRequest) Validate() error {
	if err := validateID(r.Member); err != nil {
		return fmt.Errorf("member: %w", err)
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
