package protocol

import (
	"encoding/json"
	"strings"
	"time"
)

// Records relayed between peered hubs. A home hub delivers each record
// about its identifiers to the peered hubs that subscribed; each of them
// fans it out to its own members unchanged, still signed by the home hub,
// and adds a via entry: a compact JWS, typ "sparr-via+jwt", signed with
// its own record-signing key (the keys of its JWKS):
//
//	{"iss":"https://sparr.example.se","hub":"hub-se","jti":"<record jti>","hop":1,"iat":1795255200}
//
// iss is the relaying hub's issuer URL, hub its id at its peers, jti the
// record's, hop its place in the chain (1 for the first hub after the
// home hub). The chain travels beside the record: in the Sparr-Via header
// of a delivery (entries in order, separated by commas) and in the via
// member of a feed event. A hub passes a record on to its own peers only
// while the chain is shorter than [HopLimit], and takes each jti once.
const (
	TypeVia   = "sparr-via+jwt"
	HeaderVia = "Sparr-Via"
	// HopLimit is the longest via chain a relayed record may carry: a hub
	// that would add the entry past it drops the record, and one whose
	// entry reaches it passes the record on to no peer.
	HopLimit = 2
)

// A Via is one verified via entry: which hub relayed a record, when, and
// at which hop.
type Via struct {
	Issuer   string    // "iss": the relaying hub's issuer URL
	Hub      string    // "hub": the relaying hub's id at its peers
	Record   string    // "jti": the relayed record's jti
	Hop      int       // "hop": 1 for the first hub after the home hub
	IssuedAt time.Time // "iat", whole seconds
}

type viaClaims struct {
	Iss string      `json:"iss"`
	Hub string      `json:"hub"`
	Jti string      `json:"jti"`
	Hop int         `json:"hop"`
	Iat NumericDate `json:"iat"`
}

func (c *viaClaims) check() error {
	if c.Iss == "" {
		return missingClaim("iss")
	}
	if err := first(checkID("hub", c.Hub), checkID("jti", c.Jti)); err != nil {
		return err
	}
	if c.Hop < 1 || c.Hop > HopLimit {
		return invalidClaim("hop", "%d, want 1 to %d", c.Hop, HopLimit)
	}
	return checkTime("iat", c.Iat)
}

// SignVia checks v and signs it with the relaying hub's record-signing
// key.
func SignVia(v *Via, key *SigningKey) ([]byte, error) {
	c := viaClaims{Iss: v.Issuer, Hub: v.Hub, Jti: v.Record, Hop: v.Hop, Iat: NewNumericDate(v.IssuedAt)}
	if err := c.check(); err != nil {
		return nil, err
	}
	body, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return sign(key, TypeVia, "", body)
}

// VerifyVia verifies a via entry's compact JWS against the relaying hub's
// keys, and only then decodes it. Errors are [*VerificationError]s.
func VerifyVia(jws []byte, keys *KeySet) (*Via, error) {
	const object = "via entry"
	h, verr := parseHeader(object, TypeVia, jws)
	if verr != nil {
		return nil, verr
	}
	key, ok := keys.Key(h.Kid)
	if !ok {
		return nil, &VerificationError{Object: object, Err: ErrUnknownKey, KeyID: h.Kid, Algorithm: h.Alg,
			Detail: "no key with this kid in the relaying hub's key set"}
	}
	payload, verr := verifyWith(object, h, jws, key)
	if verr != nil {
		return nil, verr
	}
	var c viaClaims
	if err := decodeStrict(payload, &c); err != nil {
		return nil, claimError(object, h, err)
	}
	if err := c.check(); err != nil {
		return nil, claimError(object, h, err)
	}
	return &Via{Issuer: c.Iss, Hub: c.Hub, Record: c.Jti, Hop: c.Hop, IssuedAt: c.Iat.Time()}, nil
}

// SplitVia splits a Sparr-Via header into its entries, in order; "" has
// none.
func SplitVia(header string) []string {
	if strings.TrimSpace(header) == "" {
		return nil
	}
	parts := strings.Split(header, ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
	}
	return parts
}
