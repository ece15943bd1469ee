package api

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// ErrInvalidPeer is returned, wrapped, by [PeerRequest.Validate] for a
// registration of a peered hub that is malformed.
var ErrInvalidPeer = errors.New("invalid peer")

// A PeerPolicy is what an operator lets flow between the hub and one peer:
// the event types and identifier types whose records flow (empty: the
// flag events; every type), and the legal basis on which suspicions flow
// (empty, the default: they never do). It is the peers file's "policy"
// and the hub's peering.Policy, in the operator API.
type PeerPolicy struct {
	EventTypes           []protocol.EventType      `json:"event_types,omitempty"`
	IdentifierTypes      []protocol.IdentifierType `json:"identifier_types,omitempty"`
	SuspicionsLegalBasis string                    `json:"suspicions_legal_basis,omitempty"`
}

// A PeerRequest is the body of POST /v1/admin/peers: another hub, home to
// the identifiers of its jurisdiction, as this hub's operator registers it.
//
// KeyFile names this hub's private signing key for the peer: a file in
// the peer key directory of every node of this hub (sparr serve:
// DIR/keys/peers/), never the key itself. The hub reads it to check that
// it is a private key, and keeps its name and key id only.
type PeerRequest struct {
	// ID names the peer in this hub's logs and metrics ("hub-no").
	ID string `json:"id"`
	// Jurisdiction is the peer's country, ISO 3166-1 alpha-2 ("NO").
	Jurisdiction string `json:"jurisdiction"`
	// URL is the peer's issuer URL.
	URL string `json:"url"`
	// Member is this hub's member id at the peer.
	Member string `json:"member"`
	// KeyFile is the name of this hub's private JWK for the peer in the
	// peer key directory.
	KeyFile string `json:"key_file,omitempty"`
	// Token is the peer's OPRF public key (the token member of its
	// discovery document), pinned at registration.
	Token protocol.TokenPublicKey `json:"token"`
	// Policy is what flows between the two hubs.
	Policy PeerPolicy `json:"policy"`
}

// A Peer is a peered hub as this hub holds it: its registration, the key
// id of the signing key KeyFile held when it was registered, where the
// registration comes from ("file": the peers file, read at start; "api":
// registered through the operator API and kept in the hub's store), and
// when it was registered through the API.
type Peer struct {
	PeerRequest
	KeyID     string     `json:"kid,omitempty"`
	Source    PeerSource `json:"source"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
}

// A PeerSource says where a peer's registration comes from.
type PeerSource string

// The sources of a registration.
const (
	PeerFromFile PeerSource = "file"
	PeerFromAPI  PeerSource = "api"
)

// A PeersResponse answers GET /v1/admin/peers: every peer, those of the
// peers file first, then those registered through the API, by id.
type PeersResponse struct {
	Peers []*Peer `json:"peers"`
}

// A PeerResponse is the answer about one peer, with the index of the
// exchange-log entry of the change that answered with it.
type PeerResponse struct {
	Peer     *Peer  `json:"peer"`
	LogIndex uint64 `json:"log_index,omitempty"`
}

// Validate checks the form of r: an id as members' ids are, an upper-case
// two-letter jurisdiction, an http(s) URL, this hub's member id at the
// peer, a key file named by a plain file name (no directory, not hidden),
// a token key with its suite, epoch and key, and a policy naming known
// types. Errors wrap [ErrInvalidPeer] and name the field.
func (r *PeerRequest) Validate() error {
	if err := validateID(r.ID); err != nil {
		return peerInvalid("id", "%v", unwrapMember(err))
	}
	if j := r.Jurisdiction; len(j) != 2 || j[0] < 'A' || j[0] > 'Z' || j[1] < 'A' || j[1] > 'Z' {
		return peerInvalid("jurisdiction", "%q; want an upper-case ISO 3166-1 alpha-2 code such as NO", j)
	}
	if !strings.HasPrefix(r.URL, "https://") && !strings.HasPrefix(r.URL, "http://") || len(r.URL) > 2048 || strings.ContainsAny(r.URL, " \t\r\n") {
		return peerInvalid("url", "%q; want the peer's https:// issuer URL", r.URL)
	}
	if err := validateID(r.Member); err != nil {
		return peerInvalid("member", "this hub's id at the peer: %v", unwrapMember(err))
	}
	if f := r.KeyFile; f == "" || len(f) > 255 || filepath.Base(f) != f || strings.ContainsAny(f, `/\`) || strings.HasPrefix(f, ".") {
		return peerInvalid("key_file", "%q; want the plain name of a file in the peer key directory, such as hub-no.jwk", f)
	}
	if r.Token.Suite == "" || len(r.Token.Key) == 0 || r.Token.Epoch == 0 {
		return peerInvalid("token", "incomplete; give the token member of the peer's discovery document (suite, epoch, public_key)")
	}
	for _, et := range r.Policy.EventTypes {
		if !knownEvent(et) {
			return peerInvalid("policy.event_types", "unknown event type %q", et)
		}
	}
	for _, t := range r.Policy.IdentifierTypes {
		if _, err := protocol.ParseIdentifierType(string(t)); err != nil {
			return peerInvalid("policy.identifier_types", "%v", err)
		}
	}
	return nil
}

func knownEvent(et protocol.EventType) bool {
	for _, k := range protocol.EventTypes() {
		if k == et {
			return true
		}
	}
	return false
}

// unwrapMember drops the "invalid member: id:" prefix of a member id's
// error.
func unwrapMember(err error) string {
	s := err.Error()
	if i := strings.Index(s, ": id: "); i >= 0 {
		return s[i+len(": id: "):]
	}
	return s
}

func peerInvalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidPeer, field, fmt.Sprintf(format, args...))
}
