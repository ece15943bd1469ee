package client_test

// Verification without HTTP: the key cache and the tokenizer take their
// I/O through KeySource and Evaluator, so these tests feed them directly.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server/hubtest"
)

const issuer = "https://hub.example"

func signingKey(t testing.TB) *protocol.SigningKey {
	t.Helper()
	k, err := protocol.GenerateSigningKey(protocol.EdDSA, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keySet(t testing.TB, keys ...*protocol.SigningKey) *protocol.KeySet {
	t.Helper()
	var pubs []*protocol.PublicKey
	for _, k := range keys {
		pubs = append(pubs, k.Public())
	}
	ks, err := protocol.NewKeySet(pubs...)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// record signs a flag-placed record with key.
func record(t testing.TB, key *protocol.SigningKey, iss, id string) []byte {
	t.Helper()
	tok := protocol.Token{Type: protocol.TypeEmail, Epoch: 1}
	copy(tok.Value[:], id)
	jws, err := protocol.SignRecord(&protocol.Record{Issuer: iss, IssuedAt: time.Unix(1795255200, 0), ID: id, Txn: "txn-" + id,
		Subject: protocol.OpaqueSubject(tok),
		Event: protocol.FlagPlaced{FlagID: "flag-" + id, Kind: protocol.FlagKindStandard, Origin: "bank-a",
			ExpiresAt: protocol.NumericDate(1826791200), ConsentRef: "consent-" + id}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return jws
}

// source serves a key set that a test may change, counting fetches.
type source struct {
	mu      sync.Mutex
	set     *protocol.KeySet
	fetches int
	fail    error
}

func (s *source) FetchKeys(context.Context) (*protocol.KeySet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fetches++
	return s.set, s.fail
}

func (s *source) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}

// TestKeysFollowRotation: the cache fetches on first use, fetches again
// when a record names a new key, but at most once a minute however many
// unknown key ids arrive.
func TestKeysFollowRotation(t *testing.T) {
	ctx := context.Background()
	clock := hubtest.NewClock(time.Unix(1795255200, 0))
	old, rotated, stranger := signingKey(t), signingKey(t), signingKey(t)
	src := &source{set: keySet(t, old)}
	keys := client.NewKeys(client.KeysConfig{Source: src, Issuer: issuer, Now: clock.Now})

	if _, err := keys.Verify(ctx, record(t, old, issuer, "r1")); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.Verify(ctx, record(t, old, issuer, "r2")); err != nil || src.count() != 1 {
		t.Fatalf("second record: %v after %d fetches, want 1 fetch", err, src.count())
	}

	// The hub rotates. Within a minute of the last fetch, a record under
	// the new key is not yet trusted, and says when it may be.
	src.mu.Lock()
	src.set = keySet(t, rotated, old)
	src.mu.Unlock()
	clock.Advance(20 * time.Second)
	_, err := keys.Verify(ctx, record(t, rotated, issuer, "r3"))
	var re *client.RecordError
	if !errors.As(err, &re) || re.RetryAfter != 40*time.Second || src.count() != 1 {
		t.Fatalf("record under the new key 20 s after the fetch: %v (%+v) after %d fetches, want a RecordError to retry in 40 s", err, re, src.count())
	}
	// A minute after the last fetch, it makes the cache fetch again.
	clock.Advance(40 * time.Second)
	if _, err := keys.Verify(ctx, record(t, rotated, issuer, "r3")); err != nil || src.count() != 2 {
		t.Fatalf("record under the rotated key: %v after %d fetches, want 2", err, src.count())
	}

	// Records under a key the hub never published: refused, and within a
	// minute of the last fetch no further fetch happens.
	for i := range 5 {
		_, err := keys.Verify(ctx, record(t, stranger, issuer, fmt.Sprintf("s%d", i)))
		if !errors.As(err, &re) || !errors.Is(err, protocol.ErrUnknownKey) || !errors.Is(err, client.ErrUntrustedRecord) || re.JWS == "" {
			t.Fatalf("record under an unknown key: %v, want a RecordError for an unknown key with the evidence", err)
		}
	}
	if n := src.count(); n != 2 {
		t.Errorf("%d fetches after unknown keys within a minute, want still 2", n)
	}
	clock.Advance(time.Minute)
	keys.Verify(ctx, record(t, stranger, issuer, "s9"))
	if n := src.count(); n != 3 {
		t.Errorf("%d fetches a minute later, want 3", n)
	}
	// A failed fetch is an error to retry, not an untrusted record.
	clock.Advance(time.Minute)
	src.mu.Lock()
	src.fail = errors.New("hub down")
	src.mu.Unlock()
	if _, err := keys.Verify(ctx, record(t, stranger, issuer, "s10")); err == nil || errors.Is(err, client.ErrUntrustedRecord) {
		t.Errorf("unknown key while the hub is down: %v, want a fetch error", err)
	}
}

// TestKeysRefuse: tampered records, another issuer, another type of
// object, each with the record as evidence.
func TestKeysRefuse(t *testing.T) {
	ctx := context.Background()
	key := signingKey(t)
	keys := client.NewKeys(client.KeysConfig{Source: client.KeySourceFunc(func(context.Context) (*protocol.KeySet, error) {
		return keySet(t, key), nil
	}), Issuer: issuer})
	good := record(t, key, issuer, "r1")
	if _, err := keys.Verify(ctx, good); err != nil {
		t.Fatal(err)
	}
	// Another base64url character inside the signature.
	tampered := []byte(string(good))
	if i := len(tampered) - 5; tampered[i] == 'A' {
		tampered[i] = 'B'
	} else {
		tampered[i] = 'A'
	}
	other := record(t, key, "https://other.example", "r2")
	bearer, _ := protocol.NewBearer(key, "bank-a", issuer, time.Now(), time.Minute)
	for _, tc := range []struct {
		name string
		jws  []byte
		want error
	}{
		{"tampered signature", tampered, protocol.ErrBadSignature},
		{"another issuer", other, client.ErrWrongIssuer},
		{"a bearer token", []byte(bearer), protocol.ErrWrongType},
		{"not a JWS", []byte("hello"), protocol.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := keys.Verify(ctx, tc.jws)
			var re *client.RecordError
			if !errors.As(err, &re) || !errors.Is(err, tc.want) || re.JWS != string(tc.jws) {
				t.Errorf("got %v, want a RecordError for %v carrying the record", err, tc.want)
			}
		})
	}
	if _, err := keys.Verify(ctx, other); !errors.Is(err, protocol.ErrInvalidClaim) {
		t.Errorf("another issuer: %v, want it to match protocol.ErrInvalidClaim too", err)
	}
}

// evaluator evaluates with a token key directly, counting batches.
type evaluator struct {
	key     *protocol.TokenKey
	mu      sync.Mutex
	batches []int
}

func (e *evaluator) Evaluate(_ context.Context, req *protocol.TokenRequest) (*protocol.TokenResponse, error) {
	e.mu.Lock()
	e.batches = append(e.batches, len(req.Blinded))
	e.mu.Unlock()
	return e.key.Evaluate(req)
}

func tokenKey(t testing.TB, seed byte) *protocol.TokenKey {
	t.Helper()
	k, err := protocol.DeriveTokenKey(1, []byte(strings.Repeat(string(rune('a'+seed)), 32)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestTokenizer: tokens equal the unblinded evaluation, batches hold at
// most 100 distinct identifiers, the cache answers repeats.
func TestTokenizer(t *testing.T) {
	ctx := context.Background()
	key := tokenKey(t, 0)
	ev := &evaluator{key: key}
	tz := client.NewTokenizer(client.TokenizerConfig{Evaluator: ev, CacheSize: 1000})
	var values []string
	for i := range 250 {
		values = append(values, fmt.Sprintf("user%d@example.se", i%205))
	}
	toks, err := tz.Tokenize(ctx, key.Public(), protocol.TypeEmail, values...)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ev.batches) != "[100 100 5]" {
		t.Errorf("batches %v, want [100 100 5]: the distinct identifiers only", ev.batches)
	}
	for _, i := range []int{0, 99, 204, 249} {
		want, _ := key.Token(protocol.TypeEmail, values[i])
		if toks[i] != want {
			t.Errorf("token %d differs from the direct evaluation", i)
		}
	}
	if _, err := tz.Tokenize(ctx, key.Public(), protocol.TypeEmail, values[:50]...); err != nil || len(ev.batches) != 3 {
		t.Errorf("cached: %v, %d batches; want no new batch", err, len(ev.batches))
	}
	// The cache is bounded.
	small := client.NewTokenizer(client.TokenizerConfig{Evaluator: ev, CacheSize: 2})
	small.Tokenize(ctx, key.Public(), protocol.TypeEmail, "a@example.se", "b@example.se", "c@example.se")
	n := len(ev.batches)
	small.Tokenize(ctx, key.Public(), protocol.TypeEmail, "a@example.se")
	if len(ev.batches) != n+1 {
		t.Errorf("a cache of two remembered the first of three identifiers")
	}
}

// TestTokenProof: a hub that evaluates with another key than it publishes
// is caught, and no token is returned.
func TestTokenProof(t *testing.T) {
	ctx := context.Background()
	published, used := tokenKey(t, 0), tokenKey(t, 1)
	tz := client.NewTokenizer(client.TokenizerConfig{Evaluator: &evaluator{key: used}})
	toks, err := tz.Tokenize(ctx, published.Public(), protocol.TypeEmail, "victim@example.se")
	var pe *client.TokenProofError
	if toks != nil || !errors.As(err, &pe) || !errors.Is(err, protocol.ErrTokenProof) || pe.Request == nil || pe.Response == nil || pe.Key.Epoch != 1 {
		t.Fatalf("evaluation under another key: %v, %v; want a TokenProofError with the evidence", toks, err)
	}
	if strings.Contains(err.Error(), "victim") {
		t.Errorf("the error %q shows the identifier", err)
	}
	// An answer that does not fit the request is refused too.
	short := client.NewTokenizer(client.TokenizerConfig{Evaluator: client.EvaluatorFunc(func(ctx context.Context, req *protocol.TokenRequest) (*protocol.TokenResponse, error) {
		resp, err := published.Evaluate(req)
		if err == nil {
			resp.Evaluated = resp.Evaluated[:1]
		}
		return resp, err
	})})
	if _, err := short.Tokenize(ctx, published.Public(), protocol.TypeEmail, "a@example.se", "b@example.se"); !errors.Is(err, protocol.ErrInvalidTokenResponse) {
		t.Errorf("short answer: %v, want ErrInvalidTokenResponse", err)
	}
}

// TestProblemKinds maps every problem type of the catalogue to exactly
// the sentinels it must match, and no other.
func TestProblemKinds(t *testing.T) {
	sentinels := map[error]string{
		client.ErrBadRequest: "ErrBadRequest", client.ErrInvalidToken: "ErrInvalidToken", client.ErrUnauthenticated: "ErrUnauthenticated",
		client.ErrForbidden: "ErrForbidden", client.ErrSuspended: "ErrSuspended", client.ErrSuspicionsDisabled: "ErrSuspicionsDisabled",
		client.ErrNotFound: "ErrNotFound", client.ErrConflict: "ErrConflict", client.ErrStateConflict: "ErrStateConflict",
		client.ErrCursorExpired: "ErrCursorExpired", client.ErrValidation: "ErrValidation", client.ErrInvalidConsent: "ErrInvalidConsent",
		client.ErrEndpointRefused: "ErrEndpointRefused", client.ErrRateLimited: "ErrRateLimited", client.ErrQuotaExceeded: "ErrQuotaExceeded", client.ErrInternal: "ErrInternal",
		client.ErrUnavailable: "ErrUnavailable",
	}
	want := map[string][]string{
		"malformed-request":      {"ErrBadRequest"},
		"invalid-token":          {"ErrBadRequest", "ErrInvalidToken"},
		"invalid-token-request":  {"ErrBadRequest"},
		"invalid-submission":     {"ErrBadRequest"},
		"unauthenticated":        {"ErrUnauthenticated"},
		"bearer-expired":         {"ErrUnauthenticated"},
		"forbidden":              {"ErrForbidden"},
		"member-suspended":       {"ErrForbidden", "ErrSuspended"},
		"wrong-signer":           {"ErrForbidden"},
		"suspicions-disabled":    {"ErrForbidden", "ErrSuspicionsDisabled"},
		"not-found":              {"ErrNotFound"},
		"method-not-allowed":     {"ErrBadRequest"},
		"submission-conflict":    {"ErrConflict"},
		"state-conflict":         {"ErrStateConflict"},
		"cursor-expired":         {"ErrCursorExpired"},
		"payload-too-large":      {"ErrBadRequest"},
		"unsupported-media-type": {"ErrBadRequest"},
		"validation-failed":      {"ErrValidation"},
		"invalid-consent":        {"ErrInvalidConsent"},
		"endpoint-refused":       {"ErrEndpointRefused"},
		"rate-limited":           {"ErrRateLimited"},
		"token-quota-exceeded":   {"ErrQuotaExceeded", "ErrRateLimited"},
		"storage-quota-exceeded": {"ErrQuotaExceeded", "ErrRateLimited"},
		"internal":               {"ErrInternal"},
		"unavailable":            {"ErrUnavailable"},
	}
	matches := func(p *client.Problem) []string {
		var got []string
		for s, name := range sentinels {
			if errors.Is(p, s) {
				got = append(got, name)
			}
		}
		slices.Sort(got)
		return got
	}
	for _, pt := range protocol.ProblemTypes() {
		w, ok := want[pt.Slug()]
		if !ok {
			t.Errorf("%s: no sentinels expected; map the new problem type in errors.go and here", pt.Slug())
			continue
		}
		if got := matches(&client.Problem{Problem: protocol.Problem{Type: pt.URI, Title: pt.Title, Status: pt.Status}}); !slices.Equal(got, w) {
			t.Errorf("%s: got %v, want %v", pt.Slug(), got, w)
		}
	}
	// An answer from a proxy, not a problem document, is judged by its
	// status alone.
	for status, w := range map[int][]string{
		400: {"ErrBadRequest"}, 401: {"ErrUnauthenticated"}, 403: {"ErrForbidden"}, 404: {"ErrNotFound"},
		413: {"ErrBadRequest"}, 429: {"ErrRateLimited"}, 500: {"ErrInternal"},
		502: {"ErrUnavailable"}, 503: {"ErrUnavailable"}, 504: {"ErrUnavailable"}, 200: nil,
	} {
		if got := matches(&client.Problem{Problem: protocol.Problem{Status: status}}); !slices.Equal(got, w) {
			t.Errorf("a %d from a proxy: got %v, want %v", status, got, w)
		}
	}
}
