package members

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// ErrUnknownMember is returned, wrapped, by a [Directory] for a member id
// that is not registered, and so by [Keys.ResolveKey] (together with
// [protocol.ErrUnknownKey]).
var ErrUnknownMember = errors.New("unknown member")

// ErrKeySetUnavailable is returned, wrapped, by [Keys.ResolveKey] when a
// member's key set cannot be had: its URL did not answer with a usable JWK
// Set, or its inline set does not parse. It is the hub's or the member's
// operational problem, not a bad signature, and does not wrap
// [protocol.ErrUnknownKey].
var ErrKeySetUnavailable = errors.New("member key set unavailable")

// A Directory looks members up; the hub's store implements it. Member
// returns an error wrapping [ErrUnknownMember] if no member has the id.
type Directory interface {
	Member(ctx context.Context, id string) (*api.Member, error)
}

// DirectoryFunc adapts a function to [Directory].
type DirectoryFunc func(ctx context.Context, id string) (*api.Member, error)

// Member calls f.
func (f DirectoryFunc) Member(ctx context.Context, id string) (*api.Member, error) { return f(ctx, id) }

// KeysConfig configures [Keys]. Only Directory is required.
type KeysConfig struct {
	// Directory is where members are looked up.
	Directory Directory
	// HTTPClient fetches key sets from members' JWKS URLs. Its transport
	// decides which addresses the hub may connect to: the hub's dials
	// through its target policy (see [webhook.TargetPolicy]), which refuses
	// loopback, private, link-local and other special addresses. Keys never
	// follows a redirect, whatever the client's CheckRedirect says. The
	// client should have a timeout: a fetch runs to its end even if the
	// request that started it is cancelled. Nil means a client with a 10
	// second timeout over [http.DefaultTransport], which connects to any
	// address.
	//
	// [webhook.TargetPolicy]: https://pkg.go.dev/github.com/sparr-dev/sparr/federation/webhook#TargetPolicy
	HTTPClient *http.Client
	// MinRefresh is the least time between two fetches of one member's key
	// set, whatever causes them; default 10 seconds. A kid the cached set
	// lacks causes a refetch at once if the last fetch began at least this
	// long ago, so that a member's new key verifies on its first use, or
	// at most MinRefresh later if made-up kids have just caused a fetch.
	MinRefresh time.Duration
	// MinAge and MaxAge bound how long a fetched key set is used before it
	// is fetched again, even if every kid asked for is in it: as long as
	// the answer's Cache-Control max-age, or else its Expires, says, but
	// never less than MinAge nor more than MaxAge; MaxAge if the answer
	// says neither. A key removed from a member's set stops verifying at
	// most MaxAge after the hub last fetched the set with it. Defaults 30
	// seconds and 5 minutes; MinAge is cut to MaxAge if it is longer.
	MinAge, MaxAge time.Duration
	// MaxStale is how long past its expiry a key set stays in use while
	// fetching it anew fails; default one hour. Past that, resolutions
	// fail with [ErrKeySetUnavailable] until the member's key server
	// answers again.
	MaxStale time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Keys finds members' public keys for the hub: it implements
// [protocol.KeyResolver] over a [Directory]. Inline key sets are parsed
// once; key sets behind a URL are fetched with GET and cached for as long
// as the answer's cache headers say, within [KeysConfig.MinAge] and
// [KeysConfig.MaxAge]. A member's cache is dropped when its UpdatedAt
// changes, or by [Keys.Forget].
//
// A kid missing from a fetched set causes a refetch, so that a member can
// rotate keys by publishing the new one first; but there is at most one
// fetch per member per MinRefresh, whatever causes it and however many
// unknown kids arrive, and concurrent resolutions for one member share a
// fetch. If a refetch fails, the cached set stays in use for up to
// MaxStale past its expiry. Keys is safe for concurrent use.
type Keys struct {
	dir        Directory
	client     *http.Client
	minRefresh time.Duration
	minAge     time.Duration
	maxAge     time.Duration
	maxStale   time.Duration
	now        func() time.Time

	mu      sync.Mutex
	members map[string]*keyEntry // by member id
}

// Defaults of [KeysConfig].
const (
	defaultMinRefresh = 10 * time.Second
	defaultMinAge     = 30 * time.Second
	defaultMaxAge     = 5 * time.Minute
	defaultMaxStale   = time.Hour
)

var _ protocol.KeyResolver = (*Keys)(nil)

// keyEntry is what Keys holds for one member.
type keyEntry struct {
	// lock is held, as a one-slot semaphore so that waiting for it can be
	// cancelled, by the one resolution working on this entry. It never
	// changes; it guards keyState.
	lock chan struct{}
	keyState
}

// keyState is a member's cached key set and its fetch history.
type keyState struct {
	ready     bool      // the fields below are set for the member version
	updatedAt time.Time // the member version the entry is for
	url       string    // its JWKS URL, "" for an inline set
	set       *protocol.KeySet
	err       error     // why the inline set does not parse, or why the last fetch failed
	fetchedAt time.Time // when set was fetched
	expires   time.Time // when set is to be fetched anew
	triedAt   time.Time // when a fetch last began
}

// NewKeys returns a Keys for cfg, with defaults filled in. It panics if
// cfg.Directory is nil.
func NewKeys(cfg KeysConfig) *Keys {
	if cfg.Directory == nil {
		panic("members: NewKeys: KeysConfig.Directory is nil")
	}
	client := http.Client{Timeout: 10 * time.Second}
	if cfg.HTTPClient != nil {
		client = *cfg.HTTPClient
	}
	// Whatever answers at a member's URL must not send the hub elsewhere:
	// a redirect is the answer, and fetch refuses it.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, d := range []struct {
		field *time.Duration
		def   time.Duration
	}{
		{&cfg.MinRefresh, defaultMinRefresh}, {&cfg.MinAge, defaultMinAge},
		{&cfg.MaxAge, defaultMaxAge}, {&cfg.MaxStale, defaultMaxStale},
	} {
		if *d.field <= 0 {
			*d.field = d.def
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Keys{
		dir: cfg.Directory, client: &client, now: cfg.Now,
		minRefresh: cfg.MinRefresh, minAge: min(cfg.MinAge, cfg.MaxAge), maxAge: cfg.MaxAge, maxStale: cfg.MaxStale,
		members: make(map[string]*keyEntry),
	}
}

// ResolveKey returns member's public key with key id kid. The error wraps
// [protocol.ErrUnknownKey] if the member is not registered (and then also
// [ErrUnknownMember]) or has no such key; it wraps [ErrKeySetUnavailable]
// if the member's key set cannot be had, and the Directory's error if the
// lookup failed. It resolves the keys of suspended members too: whether a
// member may act, and in which role, is for the caller to decide
// ([api.Member.Active], [api.Member.HasRole]) once the signature has been checked.
func (k *Keys) ResolveKey(ctx context.Context, member, kid string) (*protocol.PublicKey, error) {
	m, err := k.dir.Member(ctx, member)
	if err == nil && m == nil {
		err = fmt.Errorf("%w %q", ErrUnknownMember, member)
	}
	if errors.Is(err, ErrUnknownMember) {
		k.Forget(member)
		return nil, fmt.Errorf("%w: %w", protocol.ErrUnknownKey, err)
	}
	if err != nil {
		return nil, fmt.Errorf("look up member %q: %w", member, err)
	}

	e := k.entry(member)
	select {
	case e.lock <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("resolve key %q of member %q: %w", kid, member, context.Cause(ctx))
	}
	defer func() { <-e.lock }()

	inline := m.HasInlineJWKS()
	jwksURL := m.JWKSURL
	if inline {
		jwksURL = ""
	}
	if !e.ready || !e.updatedAt.Equal(m.UpdatedAt) || e.url != jwksURL {
		e.keyState = keyState{ready: true, updatedAt: m.UpdatedAt, url: jwksURL}
		if inline {
			if e.set, err = protocol.ParseKeySet(m.JWKS); err != nil {
				e.err = fmt.Errorf("%w: member %q: registered jwks: %w", ErrKeySetUnavailable, member, err)
			}
		}
	}

	switch {
	case inline && e.err != nil:
		return nil, e.err
	case inline:
		if key, ok := e.set.Key(kid); ok {
			return key, nil
		}
		return nil, fmt.Errorf("%w: member %q has no key %q", protocol.ErrUnknownKey, member, kid)
	case jwksURL == "":
		return nil, fmt.Errorf("%w: member %q has no keys registered", protocol.ErrUnknownKey, member)
	}

	now := k.now()
	key, known := e.set.Key(kid)
	if known && now.Before(e.expires) {
		return key, nil
	}
	fetched := false
	if e.triedAt.IsZero() || now.Sub(e.triedAt) >= k.minRefresh {
		fetched, e.triedAt = true, now
		if set, lifetime, err := k.fetch(ctx, member, jwksURL); err != nil {
			e.err = err
		} else {
			e.set, e.fetchedAt, e.expires, e.err = set, now, now.Add(lifetime), nil
		}
	}

	// Answer from what is held: a set fetched just now or still fresh, or
	// one whose refetch failed, while it is at most maxStale past expiry.
	switch {
	case e.set != nil && now.Sub(e.expires) <= k.maxStale:
		if key, known := e.set.Key(kid); known {
			return key, nil
		}
		switch {
		case !fetched:
			return nil, fmt.Errorf("%w: member %q has no key %q in the key set fetched from %s %s ago (refetched at most every %s)",
				protocol.ErrUnknownKey, member, kid, redactURL(jwksURL), now.Sub(e.fetchedAt).Round(time.Second), k.minRefresh)
		case e.err != nil:
			return nil, fmt.Errorf("%w: member %q has no key %q in its cached key set, and refetching it failed: %w",
				protocol.ErrUnknownKey, member, kid, e.err)
		}
		return nil, fmt.Errorf("%w: member %q has no key %q in the key set at %s", protocol.ErrUnknownKey, member, kid, redactURL(jwksURL))
	case e.set != nil:
		err = fmt.Errorf("member %q: the key set fetched from %s %s ago is more than %s past its expiry, and refetching it failed: %w",
			member, redactURL(jwksURL), now.Sub(e.fetchedAt).Round(time.Second), k.maxStale, e.err)
	default:
		err = e.err
	}
	if !fetched {
		return nil, fmt.Errorf("%w (next attempt in %s)", err, (k.minRefresh - now.Sub(e.triedAt)).Round(time.Second))
	}
	return nil, err
}

// Forget drops what Keys holds for member, so that the next resolution
// reads the member and its key set anew. Call it after updating a member.
func (k *Keys) Forget(member string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.members, member)
}

// entry returns the cache entry for member, making it if need be.
func (k *Keys) entry(member string) *keyEntry {
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.members[member]
	if !ok {
		e = &keyEntry{lock: make(chan struct{}, 1)}
		k.members[member] = e
	}
	return e
}

// fetch GETs a member's JWK Set from jwksURL, and returns it with how long
// to use it (see [Keys.lifetime]). The fetch is not cancelled with ctx: a
// fetch that was started counts against MinRefresh, so it is seen through
// and its result kept for the next resolution.
//
// Nothing of the answer's body goes into an error: the body is whatever
// answers at the URL, which need not be the member's (an internal page, were
// the URL to reach one), and errors end up in logs. An error says instead
// what was wrong: the status, the media type, the size, or what kind of
// thing the body is.
func (k *Keys) fetch(ctx context.Context, member, jwksURL string) (*protocol.KeySet, time.Duration, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: member %q: GET %s: %w", ErrKeySetUnavailable, member, redactURL(jwksURL), fmt.Errorf(format, args...))
	}
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodGet, jwksURL, nil)
	if err != nil {
		// The only error is url.Parse's, which quotes the URL or a piece of it.
		return nil, 0, fail("the URL does not parse")
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		var uerr *url.Error // repeats the method and the whole URL
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, 0, fail("%w", err)
	}
	defer resp.Body.Close()
	status := fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode)) // not resp.Status, which the server words
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return nil, 0, fail("answered %s, a redirect, which the hub does not follow; register the URL the key set is served at", status)
	case resp.StatusCode != http.StatusOK:
		return nil, 0, fail("answered %s; want 200 OK with the member's JWK Set", status)
	}
	if problem := checkKeySetType(resp.Header.Values("Content-Type")); problem != "" {
		return nil, 0, fail("answered %s; serve the JWK Set as application/jwk-set+json or application/json", problem)
	}
	if resp.ContentLength > protocol.MaxKeySetSize {
		return nil, 0, fail("answered more than %d bytes; a JWK Set may be at most %d", protocol.MaxKeySetSize, protocol.MaxKeySetSize)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, protocol.MaxKeySetSize+1))
	if err != nil {
		return nil, 0, fail("reading the answer: %w", err)
	}
	if len(body) > protocol.MaxKeySetSize {
		return nil, 0, fail("answered more than %d bytes; a JWK Set may be at most %d", protocol.MaxKeySetSize, protocol.MaxKeySetSize)
	}
	set, err := protocol.ParseKeySet(body)
	if err != nil {
		return nil, 0, fail("answered %s; want a JWK Set of Ed25519 or P-256 public keys, each with a kid", describeKeySet(body))
	}
	return set, k.lifetime(resp.Header), nil
}

// lifetime returns how long to use a key set whose answer had header h: its
// freshness lifetime less its age, as an HTTP cache reckons them (RFC 9111,
// section 4.2), within [minAge, maxAge]. Cache-Control max-age counts, or,
// without it, Expires less Date (or less the time now, without a Date); Age
// is taken off either. no-store and no-cache, a max-age that is not a
// number and an Expires that is not a date count as 0, the least; several
// max-ages, as the least of them. An answer with neither max-age nor
// Expires is used for maxAge. s-maxage is for shared caches and does not
// count: the hub is the only user of what it fetches.
//
// The floor keeps a key server that forbids caching from costing a fetch
// on every request; the ceiling bounds how long a key the member has
// removed goes on verifying.
func (k *Keys) lifetime(h http.Header) time.Duration {
	fresh, ok := freshness(h, k.now())
	if !ok {
		return k.maxAge
	}
	return min(max(fresh, k.minAge), k.maxAge)
}

// freshness returns the freshness lifetime of an answer with header h less
// its age, and false if h does not say; see [Keys.lifetime].
func freshness(h http.Header, now time.Time) (time.Duration, bool) {
	var (
		lifetime time.Duration
		said     bool
	)
	for _, field := range h.Values("Cache-Control") {
		// Commas inside a quoted directive value (no-cache="a, b") split
		// it wrongly, but only into pieces named like no directive here.
		for _, directive := range strings.Split(field, ",") {
			name, value, _ := strings.Cut(directive, "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "no-store", "no-cache":
				return 0, true
			case "max-age":
				seconds := parseSeconds(strings.Trim(strings.TrimSpace(value), `"`))
				if !said || seconds < lifetime {
					lifetime = seconds
				}
				said = true
			}
		}
	}
	if !said {
		expires := h.Get("Expires")
		if expires == "" {
			return 0, false
		}
		date, err := http.ParseTime(h.Get("Date"))
		if err != nil {
			date = now
		}
		if t, err := http.ParseTime(expires); err == nil && t.After(date) {
			lifetime = t.Sub(date)
		}
	}
	if age := h.Get("Age"); age != "" {
		lifetime -= parseSeconds(strings.TrimSpace(age))
	}
	return lifetime, true
}

// parseSeconds parses a delta-seconds value of a cache header (RFC 9111,
// section 1.2.2): 0 if it is not a number, and at most about 68 years.
func parseSeconds(s string) time.Duration {
	const most = 1<<31 - 1
	n, err := strconv.ParseUint(s, 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange) || err == nil && n > most:
		n = most
	case err != nil:
		n = 0
	}
	return time.Duration(n) * time.Second
}

// checkKeySetType returns "" if the Content-Type header fields ct name a
// JSON media type (application/json, application/jwk-set+json or any other
// +json type, with any parameters), and otherwise what is wrong with them.
// It names the media type only once it has parsed as one, so that the
// words are a type's tokens and nothing else the server chose.
func checkKeySetType(ct []string) string {
	if len(ct) == 0 {
		return "without a Content-Type"
	}
	if len(ct) > 1 {
		return fmt.Sprintf("%d Content-Type fields", len(ct))
	}
	mt, _, err := mime.ParseMediaType(ct[0])
	switch {
	case err != nil:
		return "a Content-Type that does not parse"
	case mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"):
		return ""
	case len(mt) > maxShownMediaType:
		return fmt.Sprintf("a Content-Type of %d bytes, not JSON", len(mt))
	}
	return fmt.Sprintf("Content-Type %q, not JSON", mt)
}

// maxShownMediaType is the longest media type an error names.
const maxShownMediaType = 64

// describeKeySet says what body, which [protocol.ParseKeySet] refused, is
// instead of a usable JWK Set, without quoting any of it: its kind, the
// number of its keys, the position of the first unusable one.
func describeKeySet(body []byte) string {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	switch {
	case len(bytes.TrimSpace(body)) == 0:
		return "an empty body"
	case !json.Valid(body):
		return "a body that is not JSON"
	case json.Unmarshal(body, &doc) != nil || doc.Keys == nil:
		return `JSON that is not a JWK Set (an object with a "keys" array)`
	case len(doc.Keys) == 0:
		return "a JWK Set with no keys"
	case len(doc.Keys) > protocol.MaxKeySetKeys:
		return fmt.Sprintf("a JWK Set of %d keys; it may hold at most %d", len(doc.Keys), protocol.MaxKeySetKeys)
	}
	kids := make(map[string]bool, len(doc.Keys))
	for i, raw := range doc.Keys {
		key, err := protocol.ParsePublicKey(raw)
		if err != nil {
			return fmt.Sprintf("a JWK Set whose key %d (of %d) is not a usable public signing key", i, len(doc.Keys))
		}
		if kids[key.KeyID()] {
			return "a JWK Set with two keys of one kid"
		}
		kids[key.KeyID()] = true
	}
	return "a JWK Set the hub cannot use"
}

// redactURL returns the URL raw cut down to its scheme, host and path, for
// errors and logs: a member's JWKS URL may carry credentials in its user
// info, query or fragment.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}
