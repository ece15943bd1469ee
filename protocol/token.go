package protocol

import (
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/cloudflare/circl/group"
	"github.com/cloudflare/circl/oprf"
	"github.com/cloudflare/circl/zk/dleq"
)

// Errors about identity tokens. Each is wrapped with a detail that says what
// was wrong; test for them with errors.Is.
var (
	// ErrInvalidToken is returned by [ParseToken] for text that is not a
	// token in its one canonical form.
	ErrInvalidToken = errors.New("invalid token")
	// ErrInvalidTokenRequest is returned by [TokenKey.Evaluate] for a batch
	// the hub will not evaluate: empty, too large, for another epoch or
	// type, or holding a byte string that is not a group element.
	ErrInvalidTokenRequest = errors.New("invalid token request")
	// ErrInvalidTokenResponse is returned by [TokenClient.Finalize] for an
	// evaluation that does not match its request.
	ErrInvalidTokenResponse = errors.New("invalid token response")
	// ErrTokenProof is returned by [TokenClient.Finalize] when the hub's
	// proof does not verify: the evaluation was not made with the key the
	// hub publishes. This is a security failure; do not use the tokens.
	ErrTokenProof = errors.New("token proof does not verify against the hub's public key")
	// ErrNotCanonical is returned by [TokenClient.Blind] for an input that
	// is not in canonical form; tokens of non-canonical input would never
	// match anyone else's. When the input is not a valid identifier at all
	// (or is an interim number), the error also wraps the
	// [*IdentifierError] from [Canonicalize].
	ErrNotCanonical = errors.New("identifier not in canonical form")
)

const (
	// TokenSuite is the RFC 9497 ciphersuite of identity tokens, used in
	// POPRF mode.
	TokenSuite = "ristretto255-SHA512"
	// MaxTokenBatch is the most identifiers one token request may carry.
	MaxTokenBatch = 100
	// TokenSize is the length in bytes of a token's value: the suite's
	// hash output.
	TokenSize = 64
	// maxTokenText bounds the text form: type, epoch, and 86 characters.
	maxTokenText = 128
)

var suite = oprf.SuiteRistretto255

// A Token is an identity token: the POPRF output (RFC 9497) for one
// canonical identifier under the hub's key of one epoch. Equal identifiers
// give equal tokens under the same epoch; nothing else about the identifier
// can be learnt from a token without the hub's key.
//
// Its text form is <type>.<epoch>.<value>, for example
// "pnr.1.2uE…" with the 64-byte value in unpadded base64url.
type Token struct {
	Type  IdentifierType
	Epoch uint32
	Value [TokenSize]byte
}

// String returns the token's text form.
func (t Token) String() string {
	return string(t.Type) + "." + strconv.FormatUint(uint64(t.Epoch), 10) + "." + Base64URL(t.Value[:]).String()
}

// MarshalText returns the text form.
func (t Token) MarshalText() ([]byte, error) {
	if _, err := ParseIdentifierType(string(t.Type)); err != nil || t.Epoch == 0 {
		return nil, fmt.Errorf("%w: token has no type or epoch", ErrInvalidToken)
	}
	return []byte(t.String()), nil
}

// UnmarshalText parses the text form with [ParseToken].
func (t *Token) UnmarshalText(text []byte) error {
	tok, err := ParseToken(string(text))
	if err != nil {
		return err
	}
	*t = tok
	return nil
}

// ParseToken parses a token's text form strictly: a known type, an epoch
// from 1 to 2³²−1 in decimal without leading zeros, and exactly 64 bytes of
// unpadded, canonical base64url. There is one text for each token.
func ParseToken(s string) (Token, error) {
	if len(s) > maxTokenText {
		return Token{}, fmt.Errorf("%w: %d characters, at most %d", ErrInvalidToken, len(s), maxTokenText)
	}
	typ, rest, ok := strings.Cut(s, ".")
	epoch, value, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return Token{}, fmt.Errorf("%w: want <type>.<epoch>.<value>", ErrInvalidToken)
	}
	t, err := ParseIdentifierType(typ)
	if err != nil {
		return Token{}, fmt.Errorf("%w: unknown type (want one of %s)", ErrInvalidToken, typeList())
	}
	e, err := parseEpoch(epoch)
	if err != nil {
		return Token{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	var v Base64URL
	if err := v.UnmarshalText([]byte(value)); err != nil {
		return Token{}, fmt.Errorf("%w: value %v", ErrInvalidToken, err)
	}
	if len(v) != TokenSize {
		return Token{}, fmt.Errorf("%w: value is %d bytes, want %d", ErrInvalidToken, len(v), TokenSize)
	}
	tok := Token{Type: t, Epoch: e}
	copy(tok.Value[:], v)
	return tok, nil
}

func parseEpoch(s string) (uint32, error) {
	if s == "" || s[0] == '0' || len(s) > 10 {
		return 0, fmt.Errorf("epoch must be a decimal number from 1 without leading zeros")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("epoch must be a decimal number from 1 without leading zeros")
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("epoch out of range")
	}
	return uint32(n), nil
}

func typeList() string {
	var names []string
	for _, t := range IdentifierTypes() {
		names = append(names, string(t))
	}
	return strings.Join(names, ", ")
}

// TokenInfo returns the POPRF public input for a type and key epoch:
// "sparr/v1/<type>/<epoch>". It keeps tokens of different types and epochs
// apart even for equal input bytes.
func TokenInfo(t IdentifierType, epoch uint32) []byte {
	return []byte("sparr/v1/" + string(t) + "/" + strconv.FormatUint(uint64(epoch), 10))
}

// A TokenPublicKey is the hub's published POPRF public key for one epoch,
// as the hub's configuration document carries it.
type TokenPublicKey struct {
	Suite string    `json:"suite"`
	Epoch uint32    `json:"epoch"`
	Key   Base64URL `json:"public_key"`
}

// A TokenRequest is a batch of blinded identifiers of one type, sent by a
// member to POST /v1/tokens. Each element is a serialized ristretto255
// element (RFC 9497, section 4.1: SerializeElement), 32 bytes.
type TokenRequest struct {
	Type    IdentifierType `json:"type"`
	Epoch   uint32         `json:"epoch"`
	Blinded []Base64URL    `json:"blinded"`
}

// A TokenResponse is the hub's evaluation of a [TokenRequest]: one evaluated
// element per blinded element, in order, and one batched DLEQ proof
// (RFC 9497, section 2.2: c ‖ s, 64 bytes).
type TokenResponse struct {
	Type      IdentifierType `json:"type"`
	Epoch     uint32         `json:"epoch"`
	Evaluated []Base64URL    `json:"evaluated"`
	Proof     Base64URL      `json:"proof"`
}

// A TokenKey is the hub's POPRF private key for one epoch. Only the hub
// holds it. Its String, GoString and LogValue never show key material.
type TokenKey struct {
	epoch  uint32
	priv   *oprf.PrivateKey
	server oprf.PartialObliviousServer
	public TokenPublicKey
}

// GenerateTokenKey makes a new random key for epoch, reading randomness
// from rand (nil means crypto/rand).
func GenerateTokenKey(epoch uint32, rand io.Reader) (*TokenKey, error) {
	if epoch == 0 {
		return nil, errors.New("token key epoch must be at least 1")
	}
	if rand == nil {
		rand = crand.Reader
	}
	priv, err := oprf.GenerateKey(suite, rand)
	if err != nil {
		return nil, fmt.Errorf("generate token key: %w", err)
	}
	return newTokenKey(epoch, priv)
}

// DeriveTokenKey derives the key for epoch from a 32-byte seed with RFC 9497
// DeriveKeyPair (info "sparr/v1/key/<epoch>"). Test vectors use it; a hub
// uses [GenerateTokenKey].
func DeriveTokenKey(epoch uint32, seed []byte) (*TokenKey, error) {
	if epoch == 0 {
		return nil, errors.New("token key epoch must be at least 1")
	}
	priv, err := oprf.DeriveKey(suite, oprf.PartialObliviousMode, seed, []byte("sparr/v1/key/"+strconv.FormatUint(uint64(epoch), 10)))
	if err != nil {
		return nil, fmt.Errorf("derive token key: %w", err)
	}
	return newTokenKey(epoch, priv)
}

func newTokenKey(epoch uint32, priv *oprf.PrivateKey) (*TokenKey, error) {
	pub, err := priv.Public().MarshalBinary()
	if err != nil {
		return nil, err
	}
	return &TokenKey{
		epoch:  epoch,
		priv:   priv,
		server: oprf.NewPartialObliviousServer(suite, priv),
		public: TokenPublicKey{Suite: TokenSuite, Epoch: epoch, Key: pub},
	}, nil
}

// Epoch returns the key's epoch.
func (k *TokenKey) Epoch() uint32 { return k.epoch }

// Public returns the public key to publish.
func (k *TokenKey) Public() TokenPublicKey { return k.public }

func (k *TokenKey) String() string {
	return fmt.Sprintf("TokenKey(%s, epoch %d)", TokenSuite, k.epoch)
}

// GoString is String, so %#v shows no key material either.
func (k *TokenKey) GoString() string { return k.String() }

// LogValue is String, for log/slog.
func (k *TokenKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

type tokenKeyFile struct {
	Suite string    `json:"suite"`
	Epoch uint32    `json:"epoch"`
	Key   Base64URL `json:"private_key"`
}

// MarshalPrivate encodes the key for the file it is kept in.
func (k *TokenKey) MarshalPrivate() ([]byte, error) {
	b, err := k.priv.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return json.Marshal(tokenKeyFile{Suite: TokenSuite, Epoch: k.epoch, Key: b})
}

// ParseTokenKey decodes a key written by [TokenKey.MarshalPrivate].
func ParseTokenKey(data []byte) (*TokenKey, error) {
	var f tokenKeyFile
	if err := decodeStrict(data, &f); err != nil {
		return nil, fmt.Errorf("token key file: %w", err)
	}
	if f.Suite != TokenSuite {
		return nil, fmt.Errorf("token key file: suite %q, want %q", f.Suite, TokenSuite)
	}
	if f.Epoch == 0 {
		return nil, errors.New("token key file: epoch must be at least 1")
	}
	priv := new(oprf.PrivateKey)
	if err := priv.UnmarshalBinary(suite, f.Key); err != nil {
		return nil, fmt.Errorf("token key file: %w", err)
	}
	return newTokenKey(f.Epoch, priv)
}

// Evaluate evaluates a batch of blinded elements (RFC 9497 POPRF
// BlindEvaluate with info [TokenInfo]) and proves it used this key. The hub
// learns nothing about the identifiers. It is [TokenKey.Batch] and
// [TokenBatch.Evaluate] in one.
func (k *TokenKey) Evaluate(req *TokenRequest) (*TokenResponse, error) {
	b, err := k.Batch(req)
	if err != nil {
		return nil, err
	}
	return b.Evaluate()
}

// A TokenBatch is a token request checked against a key: its type and
// epoch are the key's to evaluate, and its 1 to [MaxTokenBatch] elements
// decode. Checking is cheap; evaluating is not, so a hub checks a request,
// and counts it against its sender's quotas, before it evaluates it.
type TokenBatch struct {
	k     *TokenKey
	typ   IdentifierType
	elems []group.Element
}

// Batch checks req: an error wraps [ErrInvalidTokenRequest] and says what
// is wrong with it.
func (k *TokenKey) Batch(req *TokenRequest) (*TokenBatch, error) {
	if _, err := ParseIdentifierType(string(req.Type)); err != nil {
		return nil, fmt.Errorf("%w: unknown type (want one of %s)", ErrInvalidTokenRequest, typeList())
	}
	if req.Epoch != k.epoch {
		return nil, fmt.Errorf("%w: epoch %d, but the hub evaluates epoch %d; fetch the hub configuration again", ErrInvalidTokenRequest, req.Epoch, k.epoch)
	}
	elems, err := decodeElements(req.Blinded)
	if err != nil {
		return nil, fmt.Errorf("%w: blinded %v", ErrInvalidTokenRequest, err)
	}
	return &TokenBatch{k: k, typ: req.Type, elems: elems}, nil
}

// Len returns how many identifiers the batch holds.
func (b *TokenBatch) Len() int { return len(b.elems) }

// Evaluate evaluates the batch (RFC 9497 POPRF BlindEvaluate with info
// [TokenInfo]) and proves it used the key.
func (b *TokenBatch) Evaluate() (*TokenResponse, error) {
	k := b.k
	ev, err := k.server.Evaluate(&oprf.EvaluationRequest{Elements: b.elems}, TokenInfo(b.typ, k.epoch))
	if err != nil {
		return nil, fmt.Errorf("evaluate tokens: %w", err)
	}
	resp := &TokenResponse{Type: b.typ, Epoch: k.epoch, Evaluated: make([]Base64URL, len(ev.Elements))}
	for i, e := range ev.Elements {
		if resp.Evaluated[i], err = e.MarshalBinaryCompress(); err != nil {
			return nil, err
		}
	}
	if resp.Proof, err = ev.Proof.MarshalBinary(); err != nil {
		return nil, err
	}
	return resp, nil
}

// Token computes the token of one canonical identifier directly, without
// blinding (RFC 9497 EvaluateWithoutBlinding, which is defined to equal the
// oblivious result). It exists for test vectors; a hub never sees
// identifiers and must not be given them.
func (k *TokenKey) Token(t IdentifierType, canonical string) (Token, error) {
	out, err := k.server.FullEvaluate([]byte(canonical), TokenInfo(t, k.epoch))
	if err != nil {
		return Token{}, err
	}
	tok := Token{Type: t, Epoch: k.epoch}
	copy(tok.Value[:], out)
	return tok, nil
}

// decodeElements decodes 1 to MaxTokenBatch serialized group elements,
// refusing the identity (RFC 9497, section 4.1: DeserializeElement).
func decodeElements(in []Base64URL) ([]group.Element, error) {
	if len(in) == 0 {
		return nil, errors.New("batch is empty")
	}
	if len(in) > MaxTokenBatch {
		return nil, fmt.Errorf("batch of %d, at most %d", len(in), MaxTokenBatch)
	}
	g := suite.Group()
	out := make([]group.Element, len(in))
	for i, b := range in {
		if len(b) != int(g.Params().CompressedElementLength) {
			return nil, fmt.Errorf("[%d] is %d bytes, want %d", i, len(b), g.Params().CompressedElementLength)
		}
		e := g.NewElement()
		if err := e.UnmarshalBinary(b); err != nil {
			return nil, fmt.Errorf("[%d] is not a %s element", i, TokenSuite)
		}
		if e.IsIdentity() {
			return nil, fmt.Errorf("[%d] is the identity element", i)
		}
		out[i] = e
	}
	return out, nil
}

// A TokenClient is the member's side of tokenization: it blinds canonical
// identifiers, and finalizes the hub's evaluation after checking its proof
// against the hub's published key.
type TokenClient struct {
	pub    TokenPublicKey
	client oprf.PartialObliviousClient
}

// NewTokenClient returns a client for the hub's public key of one epoch.
func NewTokenClient(pub TokenPublicKey) (*TokenClient, error) {
	if pub.Suite != TokenSuite {
		return nil, fmt.Errorf("token public key: suite %q, want %q", pub.Suite, TokenSuite)
	}
	if pub.Epoch == 0 {
		return nil, errors.New("token public key: epoch must be at least 1")
	}
	k := new(oprf.PublicKey)
	if err := k.UnmarshalBinary(suite, pub.Key); err != nil {
		return nil, fmt.Errorf("token public key: %w", err)
	}
	return &TokenClient{pub: pub, client: oprf.NewPartialObliviousClient(suite, k)}, nil
}

// Epoch returns the epoch of the hub key the client works with.
func (c *TokenClient) Epoch() uint32 { return c.pub.Epoch }

// A TokenBlinding is the member's secret state between [TokenClient.Blind]
// and [TokenClient.Finalize]: the inputs and their blinds. It never leaves
// the member.
type TokenBlinding struct {
	typ IdentifierType
	n   int
	fin *oprf.FinalizeData
}

// Blind blinds up to [MaxTokenBatch] canonical identifiers of type t (as
// [Canonicalize] returns them) and returns the request to send to the hub.
//
// An input that is not canonical gives an error wrapping [ErrNotCanonical].
// If [Canonicalize] refuses the input outright, the error also wraps its
// [*IdentifierError], so that, for example, an interim number matches
// [ErrInterimNumber]: it can never be a token, canonical or not.
func (c *TokenClient) Blind(t IdentifierType, canonical ...string) (*TokenBlinding, *TokenRequest, error) {
	if _, err := ParseIdentifierType(string(t)); err != nil {
		return nil, nil, err
	}
	if len(canonical) == 0 || len(canonical) > MaxTokenBatch {
		return nil, nil, fmt.Errorf("blind %d identifiers: want 1 to %d", len(canonical), MaxTokenBatch)
	}
	inputs := make([][]byte, len(canonical))
	for i, v := range canonical {
		// Canonical forms never depend on the reference date except for
		// refusing future birth dates, so the latest date checks only form.
		cv, err := Canonicalize(t, v, maxReference)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: identifier [%d]: %w", ErrNotCanonical, i, err)
		}
		if cv != v {
			return nil, nil, fmt.Errorf("%w: identifier [%d] differs from its canonical form (pass it through Canonicalize first)", ErrNotCanonical, i)
		}
		inputs[i] = []byte(v)
	}
	fin, ev, err := c.client.Blind(inputs)
	if err != nil {
		return nil, nil, fmt.Errorf("blind: %w", err)
	}
	req := &TokenRequest{Type: t, Epoch: c.pub.Epoch, Blinded: make([]Base64URL, len(ev.Elements))}
	for i, e := range ev.Elements {
		if req.Blinded[i], err = e.MarshalBinaryCompress(); err != nil {
			return nil, nil, err
		}
	}
	return &TokenBlinding{typ: t, n: len(inputs), fin: fin}, req, nil
}

// maxReference is the reference date Blind checks canonical forms with.
var maxReference = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// Finalize checks the hub's proof and unblinds its evaluation into tokens,
// one per input, in order. It returns an error wrapping [ErrTokenProof] if
// the hub did not evaluate with its published key.
func (c *TokenClient) Finalize(b *TokenBlinding, resp *TokenResponse) ([]Token, error) {
	if resp.Type != b.typ || resp.Epoch != c.pub.Epoch {
		return nil, fmt.Errorf("%w: answer is for %s epoch %d, request was %s epoch %d", ErrInvalidTokenResponse, resp.Type, resp.Epoch, b.typ, c.pub.Epoch)
	}
	if len(resp.Evaluated) != b.n {
		return nil, fmt.Errorf("%w: %d evaluated elements for %d inputs", ErrInvalidTokenResponse, len(resp.Evaluated), b.n)
	}
	elems, err := decodeElements(resp.Evaluated)
	if err != nil {
		return nil, fmt.Errorf("%w: evaluated %v", ErrInvalidTokenResponse, err)
	}
	proof := new(dleq.Proof)
	if err := proof.UnmarshalBinary(suite.Group(), resp.Proof); err != nil {
		return nil, fmt.Errorf("%w: proof: %v", ErrInvalidTokenResponse, err)
	}
	outs, err := c.client.Finalize(b.fin, &oprf.Evaluation{Elements: elems, Proof: proof}, TokenInfo(b.typ, c.pub.Epoch))
	if errors.Is(err, oprf.ErrInvalidProof) {
		return nil, ErrTokenProof
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidTokenResponse, err)
	}
	toks := make([]Token, len(outs))
	for i, o := range outs {
		toks[i] = Token{Type: b.typ, Epoch: c.pub.Epoch}
		copy(toks[i].Value[:], o)
	}
	return toks, nil
}
