package peering

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// EventsPath is the route at which a hub takes the records its peers
// deliver: a webhook receiver (RFC 8935), authenticated by the delivering
// hub's webhook signature (v1a), not by a bearer token.
const EventsPath = "/v1/peering/events"

// KeysRefresh is the shortest time between two fetches of a peer's keys:
// a delivery signed with a key this hub does not know makes it fetch them
// again, at most this often.
const KeysRefresh = time.Minute

// ErrNoKeys is returned by [Peer.Keys] when the peer's keys could not be
// fetched.
var ErrNoKeys = errors.New("peer keys unavailable")

// Keys are what a hub checks a peer's deliveries with: the peer's webhook
// key (its discovery document's webhook_public_key, v1a signatures) and
// its record-signing keys (its JWKS: the records it issues, and the via
// entries it adds to records it relays).
type Keys struct {
	Webhook ed25519.PublicKey
	Records *protocol.KeySet
	Fetched time.Time
}

// keyCache is a peer's keys as last fetched.
type keyCache struct {
	mu      sync.Mutex
	keys    *Keys
	tried   time.Time
	lastErr error
}

// Keys returns the peer's keys, fetched from its issuer URL (its
// discovery document and its JWKS) and kept; with refresh, it fetches them
// again unless it did less than [KeysRefresh] ago.
func (p *Peer) Keys(ctx context.Context, hc *http.Client, refresh bool, now time.Time) (*Keys, error) {
	c := &p.keys
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys != nil && !refresh {
		return c.keys, nil
	}
	if !c.tried.IsZero() && now.Sub(c.tried) < KeysRefresh {
		if c.keys != nil {
			return c.keys, nil
		}
		return nil, c.lastErr
	}
	c.tried = now
	keys, err := p.fetchKeys(ctx, hc, now)
	if err != nil {
		c.lastErr = fmt.Errorf("peer %s: %w: %v", p.ID, ErrNoKeys, err)
		if c.keys != nil {
			return c.keys, nil
		}
		return nil, c.lastErr
	}
	c.keys = keys
	return keys, nil
}

func (p *Peer) fetchKeys(ctx context.Context, hc *http.Client, now time.Time) (*Keys, error) {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	base := strings.TrimSuffix(p.URL, "/")
	var conf api.Configuration
	data, err := get(ctx, hc, base+api.ConfigurationPath)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &conf); err != nil {
		return nil, fmt.Errorf("discovery document: %w", err)
	}
	if strings.TrimSuffix(conf.Issuer, "/") != base {
		return nil, fmt.Errorf("discovery document names issuer %q, want %q", conf.Issuer, p.URL)
	}
	wh, err := conf.WebhookKey()
	if err != nil {
		return nil, err
	}
	data, err = get(ctx, hc, base+"/.well-known/jwks.json")
	if err != nil {
		return nil, err
	}
	ks, err := protocol.ParseKeySet(data)
	if err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	return &Keys{Webhook: wh, Records: ks, Fetched: now}, nil
}

func get(ctx context.Context, hc *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return data, nil
}

// Subscribe registers this hub's events route at the peer as the
// webhook endpoint of its member there (Member, role peer): the URL self
// (this hub's issuer URL) with [EventsPath], for the given event types
// (none: every type the peer's policy lets flow). It is what this hub's
// operator does once, at registration; the peer answers with the
// endpoint's secret, which this hub does not need (it checks the peer's
// v1a signatures with the peer's published webhook key), and sends its
// verification record to the route. Errors are as [Peer.EvaluateTokens]
// returns them.
func (p *Peer) Subscribe(ctx context.Context, hc *http.Client, self string, now time.Time, events ...protocol.EventType) error {
	req := api.EndpointRequest{URL: strings.TrimSuffix(self, "/") + EventsPath}
	for _, e := range events {
		req.Events = append(req.Events, string(e))
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	bearer, err := protocol.NewBearer(p.Key, p.Member, p.URL, now, time.Minute)
	if err != nil {
		return fmt.Errorf("peer %s: %w", p.ID, err)
	}
	data, err := json.Marshal(req)
	if err != nil {
		return err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPut, strings.TrimSuffix(p.URL, "/")+"/v1/members/self/endpoint", bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("peer %s: %w", p.ID, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := hc.Do(hreq)
	if err != nil {
		return fmt.Errorf("peer %s: %w: %v", p.ID, ErrUnreachable, err)
	}
	defer resp.Body.Close()
	data, err = io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("peer %s: %w: %v", p.ID, ErrUnreachable, err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		var prob protocol.Problem
		if resp.Header.Get("Content-Type") == protocol.ProblemContentType && json.Unmarshal(data, &prob) == nil && prob.Type != "" {
			return &ProblemError{Peer: p.ID, Problem: &prob, RetryAfter: resp.Header.Get("Retry-After")}
		}
		return fmt.Errorf("peer %s: %w: status %d without a problem document", p.ID, ErrUnreachable, resp.StatusCode)
	}
	return nil
}
