package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// ErrWrongIssuer is returned, inside a [*RecordError], by [Keys.Verify]
// for a record whose "iss" is not the hub's issuer. It also matches
// protocol.ErrInvalidClaim.
var ErrWrongIssuer = errors.New("record from another issuer")

// DefaultKeyRefresh is the least time between two fetches of the hub's key
// set that records with unknown key ids cause.
const DefaultKeyRefresh = time.Minute

// A KeySource fetches the hub's record-signing keys, as published at
// GET /.well-known/jwks.json. [*Client] is one; tests and tools may supply
// their own.
type KeySource interface {
	FetchKeys(ctx context.Context) (*protocol.KeySet, error)
}

// KeySourceFunc adapts a function to [KeySource].
type KeySourceFunc func(ctx context.Context) (*protocol.KeySet, error)

// FetchKeys calls f.
func (f KeySourceFunc) FetchKeys(ctx context.Context) (*protocol.KeySet, error) { return f(ctx) }

// KeysConfig configures [NewKeys]. Source is required.
type KeysConfig struct {
	Source KeySource
	// Issuer, if set, is the "iss" every record must carry: the hub's
	// issuer URL from its configuration document.
	Issuer string
	// MinRefresh is the least time between two fetches caused by records
	// naming a key id the cached set does not hold; default
	// DefaultKeyRefresh. A record signed by a key the hub has just added
	// verifies after the next fetch; a flood of records with made-up key
	// ids costs the hub one request a minute.
	MinRefresh time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Keys holds the hub's record-signing keys and verifies records against
// them. It fetches the key set on first use, and again, at most once per
// MinRefresh, when a record names a key id it does not hold: that is how it
// follows the hub's key rotation. It is safe for concurrent use.
type Keys struct {
	cfg KeysConfig

	set     atomic.Pointer[protocol.KeySet]
	issuer  atomic.Pointer[string]
	mu      sync.Mutex // serialises fetches; guards fetched
	fetched time.Time  // the last fetch attempt

	homesMu sync.Mutex
	homes   map[string]*Keys // home hubs' keys, by issuer (SetHomes)
}

// NewKeys returns a key cache that fetches from cfg.Source.
func NewKeys(cfg KeysConfig) *Keys {
	if cfg.MinRefresh <= 0 {
		cfg.MinRefresh = DefaultKeyRefresh
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	k := &Keys{cfg: cfg}
	k.setIssuer(cfg.Issuer)
	return k
}

// setIssuer sets the "iss" records must carry; "" checks none.
func (k *Keys) setIssuer(iss string) { k.issuer.Store(&iss) }

// SetHomes sets the home hubs whose records the hub relays (a peered
// hub's, about that hub's identifiers): by issuer URL, the source of each
// one's keys. Verify takes a record none of the hub's own keys signed if
// one of theirs did and it names that hub as its issuer. Homes already
// set keep their cached keys.
func (k *Keys) SetHomes(homes map[string]KeySource) {
	k.homesMu.Lock()
	defer k.homesMu.Unlock()
	next := make(map[string]*Keys, len(homes))
	for iss, src := range homes {
		if old, ok := k.homes[iss]; ok {
			next[iss] = old
			continue
		}
		next[iss] = NewKeys(KeysConfig{Source: src, Issuer: iss, MinRefresh: k.cfg.MinRefresh, Now: k.cfg.Now})
	}
	k.homes = next
}

// Verify verifies a record's compact JWS and returns the record. A record
// that does not verify gives a [*RecordError]; failing to fetch the key set
// gives the fetch's error, which is worth retrying. A record signed by
// none of the hub's keys is tried with the keys of its home hubs
// ([Keys.SetHomes]): a record another hub signed and the hub relays.
func (k *Keys) Verify(ctx context.Context, jws []byte) (*protocol.Record, error) {
	rec, err := k.verifyOwn(ctx, jws)
	if !errors.Is(err, protocol.ErrUnknownKey) {
		return rec, err
	}
	k.homesMu.Lock()
	homes := make([]*Keys, 0, len(k.homes))
	for _, h := range k.homes {
		homes = append(homes, h)
	}
	k.homesMu.Unlock()
	for _, h := range homes {
		if hrec, herr := h.Verify(ctx, jws); herr == nil {
			return hrec, nil
		}
	}
	return nil, err
}

// verifyOwn verifies a record against the hub's own keys.
func (k *Keys) verifyOwn(ctx context.Context, jws []byte) (*protocol.Record, error) {
	set := k.set.Load()
	if set == nil {
		var err error
		if set, err = k.fetch(ctx, nil, true); err != nil {
			return nil, err
		}
	}
	rec, err := protocol.VerifyRecord(jws, set)
	var wait time.Duration
	if errors.Is(err, protocol.ErrUnknownKey) {
		fresh, ferr := k.fetch(ctx, set, false)
		if ferr != nil {
			return nil, ferr
		}
		if fresh != set {
			rec, err = protocol.VerifyRecord(jws, fresh)
		} else {
			wait = k.nextFetch()
		}
	}
	if err != nil {
		return nil, &RecordError{JWS: string(jws), Err: err, RetryAfter: wait}
	}
	if iss := *k.issuer.Load(); iss != "" && rec.Issuer != iss {
		return nil, &RecordError{JWS: string(jws), Err: fmt.Errorf("%w (%w): iss is %q, but the hub is %q", ErrWrongIssuer, protocol.ErrInvalidClaim, rec.Issuer, iss)}
	}
	return rec, nil
}

// Refresh fetches the key set now, whenever the last fetch was.
func (k *Keys) Refresh(ctx context.Context) error {
	_, err := k.fetch(ctx, k.set.Load(), true)
	return err
}

// KeySet returns the cached key set, nil before the first fetch.
func (k *Keys) KeySet() *protocol.KeySet { return k.set.Load() }

// nextFetch returns how long until an unknown key id may cause a fetch.
func (k *Keys) nextFetch() time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	return max(k.fetched.Add(k.cfg.MinRefresh).Sub(k.cfg.Now()), time.Second)
}

// fetch fetches the key set unless someone else replaced seen meanwhile,
// or, without force, unless the last attempt was less than MinRefresh ago.
// It returns the set to use.
func (k *Keys) fetch(ctx context.Context, seen *protocol.KeySet, force bool) (*protocol.KeySet, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if cur := k.set.Load(); cur != seen {
		return cur, nil
	}
	now := k.cfg.Now()
	if !force && now.Sub(k.fetched) < k.cfg.MinRefresh {
		return seen, nil
	}
	k.fetched = now
	set, err := k.cfg.Source.FetchKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("fetch the hub's keys: %w", err)
	}
	if set.Len() == 0 {
		return nil, errors.New("fetch the hub's keys: the key set is empty")
	}
	k.set.Store(set)
	return set, nil
}
