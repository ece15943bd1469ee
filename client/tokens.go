package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// DefaultTokenCacheSize is how many tokens a [Tokenizer] remembers.
const DefaultTokenCacheSize = 10_000

// An Evaluator evaluates blinded identifiers into the hub's answer:
// POST /v1/tokens. [*Client] is one; tests and tools may supply their own.
type Evaluator interface {
	Evaluate(ctx context.Context, req *protocol.TokenRequest) (*protocol.TokenResponse, error)
}

// EvaluatorFunc adapts a function to [Evaluator].
type EvaluatorFunc func(ctx context.Context, req *protocol.TokenRequest) (*protocol.TokenResponse, error)

// Evaluate calls f.
func (f EvaluatorFunc) Evaluate(ctx context.Context, req *protocol.TokenRequest) (*protocol.TokenResponse, error) {
	return f(ctx, req)
}

// TokenizerConfig configures [NewTokenizer]. Evaluator is required.
type TokenizerConfig struct {
	Evaluator Evaluator
	// CacheSize is how many tokens to remember, by type, canonical
	// identifier and key epoch; default DefaultTokenCacheSize, negative
	// for none.
	CacheSize int
	// Now is the clock whose date is the reference date for personnummer
	// (protocol.Canonicalize); nil means time.Now.
	Now func() time.Time
	// BatchSize is the most identifiers sent in one evaluation; default,
	// and at most, protocol.MaxTokenBatch.
	BatchSize int
}

// A Tokenizer turns identifiers into tokens: it canonicalizes them, blinds
// them, has the hub evaluate them in batches of at most
// TokenizerConfig.BatchSize, checks the hub's proof against its published key,
// and finalizes. It remembers the tokens of recent identifiers, so a
// member's regular customers cost the hub nothing. It is safe for
// concurrent use.
type Tokenizer struct {
	eval  Evaluator
	now   func() time.Time
	cache *lru[tokenKey, protocol.Token]
	batch atomic.Int64

	mu      sync.Mutex
	clients map[uint32]*tokenClient // by epoch
}

type tokenKey struct {
	typ       protocol.IdentifierType
	epoch     uint32
	canonical string
}

type tokenClient struct {
	key    protocol.TokenPublicKey
	client *protocol.TokenClient
}

// NewTokenizer returns a tokenizer that has cfg.Evaluator evaluate.
func NewTokenizer(cfg TokenizerConfig) *Tokenizer {
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultTokenCacheSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	t := &Tokenizer{eval: cfg.Evaluator, now: cfg.Now, cache: newLRU[tokenKey, protocol.Token](cfg.CacheSize), clients: map[uint32]*tokenClient{}}
	t.setBatchSize(cfg.BatchSize)
	return t
}

// setBatchSize sets the most identifiers of one evaluation: n, if it is
// from 1 to protocol.MaxTokenBatch, otherwise protocol.MaxTokenBatch.
func (t *Tokenizer) setBatchSize(n int) {
	if n < 1 || n > protocol.MaxTokenBatch {
		n = protocol.MaxTokenBatch
	}
	t.batch.Store(int64(n))
}

// A TokenProofError says the hub's evaluation of a token batch did not
// come with a valid proof under the key the hub publishes: it evaluated
// with another key, and the tokens would match nobody else's (or would let
// the hub tell members apart). No token of the batch is returned. It
// carries the evidence: the published key, and the request and answer,
// which hold blinded elements only, never identifiers. errors.Is(err,
// protocol.ErrTokenProof) holds.
type TokenProofError struct {
	Key      protocol.TokenPublicKey
	Request  *protocol.TokenRequest
	Response *protocol.TokenResponse
}

func (e *TokenProofError) Error() string {
	return fmt.Sprintf("%v: batch of %d %s identifiers, epoch %d; report it to the hub's operator",
		protocol.ErrTokenProof, len(e.Request.Blinded), e.Request.Type, e.Key.Epoch)
}

// Unwrap returns protocol.ErrTokenProof.
func (e *TokenProofError) Unwrap() error { return protocol.ErrTokenProof }

// Tokenize returns the tokens of values, identifiers of type typ, in order,
// under key, the hub's published token key. An identifier that is not
// valid gives an error wrapping its [*protocol.IdentifierError], which never
// contains the identifier; nothing is sent to the hub then.
func (t *Tokenizer) Tokenize(ctx context.Context, key protocol.TokenPublicKey, typ protocol.IdentifierType, values ...string) ([]protocol.Token, error) {
	ref := t.now()
	out := make([]protocol.Token, len(values))
	// The identifiers the cache does not hold, each once, and where each
	// goes in out.
	var missing []string
	where := map[string][]int{}
	for i, v := range values {
		canonical, err := protocol.Canonicalize(typ, v, ref)
		if err != nil {
			return nil, fmt.Errorf("tokenize %s identifier [%d]: %w", typ, i, err)
		}
		if tok, ok := t.cache.get(tokenKey{typ, key.Epoch, canonical}); ok {
			out[i] = tok
			continue
		}
		if _, seen := where[canonical]; !seen {
			missing = append(missing, canonical)
		}
		where[canonical] = append(where[canonical], i)
	}
	if len(missing) == 0 {
		return out, nil
	}
	tc, err := t.client(key)
	if err != nil {
		return nil, err
	}
	size := int(t.batch.Load())
	for start := 0; start < len(missing); start += size {
		batch := missing[start:min(start+size, len(missing))]
		blinding, req, err := tc.client.Blind(typ, batch...)
		if err != nil {
			return nil, fmt.Errorf("tokenize: %w", err)
		}
		resp, err := t.eval.Evaluate(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("tokenize: %w", err)
		}
		toks, err := tc.client.Finalize(blinding, resp)
		if errors.Is(err, protocol.ErrTokenProof) {
			return nil, &TokenProofError{Key: tc.key, Request: req, Response: resp}
		}
		if err != nil {
			return nil, fmt.Errorf("tokenize: %w", err)
		}
		for i, canonical := range batch {
			t.cache.add(tokenKey{typ, key.Epoch, canonical}, toks[i])
			for _, j := range where[canonical] {
				out[j] = toks[i]
			}
		}
	}
	return out, nil
}

// client returns the token client for key, made once per epoch and key.
func (t *Tokenizer) client(key protocol.TokenPublicKey) (*tokenClient, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.clients[key.Epoch]; ok && c.key.Suite == key.Suite && bytes.Equal(c.key.Key, key.Key) {
		return c, nil
	}
	c, err := protocol.NewTokenClient(key)
	if err != nil {
		return nil, fmt.Errorf("tokenize: the hub's %w", err)
	}
	tc := &tokenClient{key: key, client: c}
	t.clients[key.Epoch] = tc
	return tc, nil
}
