package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// A SubjectID names who a record is about (RFC 9493): format "opaque" with
// one token as ID, or format "aliases" with several opaque identifiers (a
// suspicion about a personnummer, an e-mail address and a phone number).
type SubjectID struct {
	Format      string      `json:"format"`
	ID          string      `json:"id,omitempty"`
	Identifiers []SubjectID `json:"identifiers,omitempty"`
}

// MaxAliases is the most tokens one subject may carry.
const MaxAliases = 10

// OpaqueSubject returns the subject identifier of one token.
func OpaqueSubject(t Token) *SubjectID {
	return &SubjectID{Format: "opaque", ID: t.String()}
}

// SubjectOf returns an opaque subject for one token and an aliases subject
// for several.
func SubjectOf(tokens ...Token) *SubjectID {
	if len(tokens) == 1 {
		return OpaqueSubject(tokens[0])
	}
	s := &SubjectID{Format: "aliases"}
	for _, t := range tokens {
		s.Identifiers = append(s.Identifiers, *OpaqueSubject(t))
	}
	return s
}

// Tokens returns the subject's tokens, checking the identifier's form.
func (s *SubjectID) Tokens() ([]Token, error) {
	if s == nil {
		return nil, missingClaim("sub_id")
	}
	switch s.Format {
	case "opaque":
		if len(s.Identifiers) != 0 {
			return nil, invalidClaim("sub_id", "format \"opaque\" carries \"identifiers\"")
		}
		t, err := ParseToken(s.ID)
		if err != nil {
			return nil, invalidClaim("sub_id.id", "%v", err)
		}
		return []Token{t}, nil
	case "aliases":
		if s.ID != "" {
			return nil, invalidClaim("sub_id", "format \"aliases\" carries \"id\"")
		}
		if len(s.Identifiers) < 2 || len(s.Identifiers) > MaxAliases {
			return nil, invalidClaim("sub_id.identifiers", "%d identifiers, want 2 to %d", len(s.Identifiers), MaxAliases)
		}
		var out []Token
		seen := make(map[Token]bool, len(s.Identifiers))
		for i := range s.Identifiers {
			id := &s.Identifiers[i]
			if id.Format != "opaque" {
				return nil, invalidClaim(fmt.Sprintf("sub_id.identifiers[%d].format", i), "%q, want \"opaque\"", id.Format)
			}
			t, err := ParseToken(id.ID)
			if err != nil {
				return nil, invalidClaim(fmt.Sprintf("sub_id.identifiers[%d].id", i), "%v", err)
			}
			if seen[t] {
				return nil, invalidClaim(fmt.Sprintf("sub_id.identifiers[%d].id", i), "repeats an earlier token")
			}
			seen[t] = true
			out = append(out, t)
		}
		return out, nil
	case "":
		return nil, missingClaim("sub_id.format")
	}
	return nil, invalidClaim("sub_id.format", "%q (want \"opaque\" or \"aliases\")", s.Format)
}

// checkStream checks the subject of a stream verification: the stream's
// id, as an opaque identifier.
func (s *SubjectID) checkStream() error {
	switch {
	case s == nil:
		return missingClaim("sub_id")
	case s.Format != "opaque" || len(s.Identifiers) != 0:
		return invalidClaim("sub_id", "a stream verification's subject is the stream, format \"opaque\"")
	}
	return checkID("sub_id.id", s.ID)
}

// A Record is a signed event: a Security Event Token (RFC 8417) that the hub
// signs as a compact JWS with "typ":"secevent+jwt". Records are the unit of
// everything the hub publishes; the exact signed bytes are kept and served,
// so anyone holding the hub's public keys can verify a record years later.
type Record struct {
	Issuer   string     // "iss": the hub
	IssuedAt time.Time  // "iat", whole seconds
	ID       string     // "jti": a UUIDv7 chosen by the hub
	Txn      string     // "txn": the submission (its jti) or hub job that caused it
	Subject  *SubjectID // "sub_id": nil only for verification events; the stream for a stream verification
	Event    Event      // the one member of "events"
}

// recordClaims is a Record on the wire, in claim order.
type recordClaims struct {
	Iss    string                        `json:"iss"`
	Iat    NumericDate                   `json:"iat"`
	Jti    string                        `json:"jti"`
	Txn    string                        `json:"txn"`
	SubID  *SubjectID                    `json:"sub_id,omitempty"`
	Events map[EventType]json.RawMessage `json:"events"`
}

// SignRecord checks r and signs it with the hub's key. The result is the
// record's compact JWS, the bytes to store, serve and deliver.
func SignRecord(r *Record, key *SigningKey) ([]byte, error) {
	if r.Event == nil {
		return nil, fmt.Errorf("sign record: %w: events", ErrMissingClaim)
	}
	payload, err := json.Marshal(r.Event)
	if err != nil {
		return nil, fmt.Errorf("sign record: %w", err)
	}
	claims := recordClaims{
		Iss: r.Issuer, Iat: NewNumericDate(r.IssuedAt), Jti: r.ID, Txn: r.Txn, SubID: r.Subject,
		Events: map[EventType]json.RawMessage{r.Event.EventType(): payload},
	}
	if err := claims.check(); err != nil {
		return nil, fmt.Errorf("sign record: %w", err)
	}
	body, err := json.Marshal(claims)
	if err != nil {
		return nil, fmt.Errorf("sign record: %w", err)
	}
	return sign(key, TypeRecord, "", body)
}

// VerifyRecord verifies a record's compact JWS against the hub's keys, and
// only then decodes it. The header must name a key in keys ("kid") with its
// algorithm ("alg") and carry "typ":"secevent+jwt"; the claims must hold
// iss, iat, jti, txn, sub_id (except for verification events) and exactly
// one event of a known type with its required fields. Errors are
// [*VerificationError]s.
func VerifyRecord(jws []byte, keys *KeySet) (*Record, error) {
	const object = "record"
	h, verr := parseHeader(object, TypeRecord, jws)
	if verr != nil {
		return nil, verr
	}
	key, ok := keys.Key(h.Kid)
	if !ok {
		return nil, &VerificationError{Object: object, Err: ErrUnknownKey, KeyID: h.Kid, Algorithm: h.Alg,
			Detail: "no key with this kid in the hub's key set; refresh the JWKS"}
	}
	payload, verr := verifyWith(object, h, jws, key)
	if verr != nil {
		return nil, verr
	}
	var c recordClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, claimError(object, h, err)
	}
	if err := c.check(); err != nil {
		return nil, claimError(object, h, err)
	}
	var typ EventType
	var raw json.RawMessage
	for typ, raw = range c.Events {
	}
	ev, err := decodeEvent(typ, raw)
	if err != nil {
		return nil, claimError(object, h, err)
	}
	if err := ev.check(); err != nil {
		return nil, claimError(object, h, within("events."+typ.Short()+".", err))
	}
	return &Record{Issuer: c.Iss, IssuedAt: c.Iat.Time(), ID: c.Jti, Txn: c.Txn, Subject: c.SubID, Event: ev}, nil
}

// check checks the claims every record carries, including that the subject
// is well formed.
func (c *recordClaims) check() error {
	if c.Iss == "" {
		return missingClaim("iss")
	}
	if c.Iat == 0 {
		return missingClaim("iat")
	}
	if err := first(checkID("jti", c.Jti), checkID("txn", c.Txn)); err != nil {
		return err
	}
	switch len(c.Events) {
	case 0:
		return missingClaim("events")
	case 1:
	default:
		return invalidClaim("events", "%d events, want exactly one", len(c.Events))
	}
	if _, ok := c.Events[EventVerification]; ok {
		if c.SubID != nil {
			return invalidClaim("sub_id", "a verification event has no subject")
		}
		return nil
	}
	if _, ok := c.Events[EventStreamVerification]; ok {
		return c.SubID.checkStream()
	}
	_, err := c.SubID.Tokens()
	return err
}

// claimError turns a failure found after the signature verified into a
// VerificationError: a *claimProblem keeps its claim and sentinel, and
// anything else is a payload that did not decode.
func claimError(object string, h jwsHeader, err error) *VerificationError {
	ve := &VerificationError{Object: object, KeyID: h.Kid, Algorithm: h.Alg}
	var p *claimProblem
	if errors.As(err, &p) {
		ve.Err, ve.Claim, ve.Detail = p.err, p.claim, p.detail
	} else {
		ve.Err, ve.Detail = ErrMalformed, "claims: "+err.Error()
	}
	return ve
}
