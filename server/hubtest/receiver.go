package hubtest

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// A Receiver is a member's webhook endpoint for tests: a real HTTP server
// on loopback that verifies every delivery as a member must — Standard
// Webhooks signatures (the member's secret, and the hub's Ed25519 key), then
// the record's JWS against the hub's keys — and keeps what it received.
type Receiver struct {
	URL    string
	Member *Member
	srv    *httptest.Server
	hub    *Hub

	mu       sync.Mutex
	verifier protocol.WebhookVerifier
	jwks     *protocol.KeySet
	homes    []*protocol.KeySet // peered hubs' keys, for records relayed from them
	// Behave, if set, may answer a delivery itself (returning true)
	// instead of accepting it; n counts deliveries received, from 1.
	behave   func(n int, w http.ResponseWriter, r *http.Request) bool
	received int
	attempts []string // the webhook-id of every request
	got      []Received
	invalid  []string
	notify   chan struct{}
}

// A Received is one verified delivery.
type Received struct {
	Seq, PrevSeq uint64
	WebhookID    string
	Record       *protocol.Record
	At           time.Time
	// Via is the Sparr-Via header's entries: the via chain of a record
	// relayed from its home hub.
	Via []string
}

// NewReceiver starts a receiver for member m. Register it with
// m.Register. It stops when the test ends.
func (h *Hub) NewReceiver(t testing.TB, m *Member) *Receiver {
	t.Helper()
	r := &Receiver{Member: m, hub: h, notify: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	r.URL = r.srv.URL + "/sparr/events"
	t.Cleanup(r.srv.Close)
	// Before it has a secret, a receiver verifies with the hub's published
	// webhook key, as a member's must (the verification event may arrive
	// before the answer with the secret is read).
	r.Trust(t, "")
	return r
}

// Behave sets how the receiver answers; nil accepts everything valid.
func (r *Receiver) Behave(f func(n int, w http.ResponseWriter, req *http.Request) bool) {
	r.mu.Lock()
	r.behave = f
	r.mu.Unlock()
}

// Close stops the receiver's server, cutting connections.
func (r *Receiver) Close() { r.srv.CloseClientConnections(); r.srv.Close() }

// Register registers the receiver as its member's endpoint and keeps the
// secret the hub answers with.
func (r *Receiver) Register(t testing.TB, events ...protocol.EventType) {
	t.Helper()
	secret, _, err := r.Member.Client().RegisterEndpoint(context.Background(), r.URL, events...)
	if err != nil {
		t.Fatalf("register endpoint of %s: %v", r.Member.ID, err)
	}
	if secret.Encode() == (protocol.WebhookSecret{}).Encode() {
		r.Trust(t, "") // an endpoint changed keeps its secrets
		return
	}
	r.Trust(t, secret.Encode())
}

// Trust sets what the receiver verifies with: the secret (if not empty),
// the hub's webhook key and its JWKS.
func (r *Receiver) Trust(t testing.TB, secret string) {
	t.Helper()
	pub, err := r.hub.configuration(t).WebhookKey()
	if err != nil {
		t.Fatal(err)
	}
	v := protocol.WebhookVerifier{PublicKeys: []ed25519.PublicKey{pub}}
	if secret != "" {
		s, err := protocol.ParseWebhookSecret(secret)
		if err != nil {
			t.Fatal(err)
		}
		v.Secrets = []protocol.WebhookSecret{s}
		v.PublicKeys = nil // prove the HMAC path; the Ed25519 path has its own test
	}
	jwks := r.hub.JWKS(t)
	r.mu.Lock()
	r.verifier, r.jwks = v, jwks
	r.mu.Unlock()
}

// TrustHome makes the receiver take records signed by home, a hub peered
// with the receiver's, whose records its hub relays: as a member must, it
// verifies them with the home hub's keys (the issuer that its hub's
// discovery document lists in home_tokens).
func (r *Receiver) TrustHome(t testing.TB, home *Hub) {
	t.Helper()
	jwks := home.JWKS(t)
	r.mu.Lock()
	r.homes = append(r.homes, jwks)
	r.mu.Unlock()
}

// RequireKey makes the receiver verify v1a signatures only.
func (r *Receiver) RequireKey(t testing.TB) {
	t.Helper()
	r.Trust(t, "")
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.received++
	r.attempts = append(r.attempts, req.Header.Get(protocol.HeaderWebhookID))
	n, behave, verifier, jwks, homes := r.received, r.behave, r.verifier, r.jwks, r.homes
	r.mu.Unlock()
	if behave != nil && behave(n, w, req) {
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	fail := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		r.mu.Lock()
		r.invalid = append(r.invalid, msg)
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"err": "authentication_failed", "description": msg})
	}
	if ct := req.Header.Get("Content-Type"); ct != protocol.DeliveryContentType {
		fail("Content-Type %q", ct)
		return
	}
	if err := verifier.VerifyHeaders(req.Header, body, time.Now()); err != nil {
		fail("webhook signature: %v", err)
		return
	}
	rec, err := protocol.VerifyRecord(body, jwks)
	for _, ks := range homes {
		if err == nil {
			break
		}
		rec, err = protocol.VerifyRecord(body, ks)
	}
	if err != nil {
		fail("record: %v", err)
		return
	}
	seq, err1 := strconv.ParseUint(req.Header.Get(protocol.HeaderSequence), 10, 64)
	prev, err2 := strconv.ParseUint(req.Header.Get(protocol.HeaderPreviousSequence), 10, 64)
	if err1 != nil || err2 != nil {
		fail("sequence headers %q %q", req.Header.Get(protocol.HeaderSequence), req.Header.Get(protocol.HeaderPreviousSequence))
		return
	}
	r.mu.Lock()
	r.got = append(r.got, Received{Seq: seq, PrevSeq: prev, WebhookID: req.Header.Get(protocol.HeaderWebhookID), Record: rec, At: time.Now(),
		Via: protocol.SplitVia(req.Header.Get(protocol.HeaderVia))})
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusAccepted)
}

// Received returns the verified deliveries so far.
func (r *Receiver) Received() []Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Received(nil), r.got...)
}

// Requests returns how many requests the receiver has had.
func (r *Receiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.received
}

// Attempts returns the webhook-id of every request the receiver has had,
// in order: those it accepted, those it refused, and those Behave
// answered.
func (r *Receiver) Attempts() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.attempts...)
}

// Invalid returns why deliveries failed verification, if any did.
func (r *Receiver) Invalid() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.invalid...)
}

// WaitFor waits until the receiver holds a verified delivery for which
// match is true, and returns it; it fails the test after timeout.
func (r *Receiver) WaitFor(t testing.TB, timeout time.Duration, what string, match func(Received) bool) Received {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, g := range r.Received() {
			if match(g) {
				return g
			}
		}
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("receiver of %s: no %s within %s (got %d deliveries, invalid: %v)", r.Member.ID, what, timeout, len(r.Received()), r.Invalid())
		}
		select {
		case <-r.notify:
		case <-time.After(min(left, 50*time.Millisecond)):
		}
	}
}

// WaitEvent waits for a delivery of an event of type t.
func (r *Receiver) WaitEvent(t testing.TB, timeout time.Duration, typ protocol.EventType) Received {
	t.Helper()
	return r.WaitFor(t, timeout, typ.Short(), func(g Received) bool { return g.Record.Event.EventType() == typ })
}
