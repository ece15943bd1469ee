package client_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// A delivery is a request as the hub sent it.
type delivery struct {
	header http.Header
	body   []byte
}

// recorder keeps every request it passes on.
type recorder struct {
	next http.Handler
	mu   sync.Mutex
	got  []delivery
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.got = append(r.got, delivery{req.Header.Clone(), body})
	r.mu.Unlock()
	req.Body = io.NopCloser(bytes.NewReader(body))
	r.next.ServeHTTP(w, req)
}

func (r *recorder) count(typ protocol.EventType) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, d := range r.got {
		if recordType(d.body) == typ {
			n++
		}
	}
	return n
}

func (r *recorder) last(typ protocol.EventType) delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.got) - 1; i >= 0; i-- {
		if strings.Contains(string(r.got[i].body), ".") && recordType(r.got[i].body) == typ {
			return r.got[i]
		}
	}
	return delivery{}
}

// recordType reads a record's event type without verifying it.
func recordType(jws []byte) protocol.EventType {
	for t := range recordClaims(jws).Events {
		return t
	}
	return ""
}

// recordID reads a record's jti without verifying it.
func recordID(jws []byte) string { return recordClaims(jws).ID }

type claims struct {
	ID     string                                 `json:"jti"`
	Events map[protocol.EventType]json.RawMessage `json:"events"`
}

// recordClaims reads a record's claims without verifying them.
func recordClaims(jws []byte) claims {
	var c claims
	parts := strings.Split(string(jws), ".")
	if len(parts) != 3 {
		return c
	}
	var payload protocol.Base64URL
	if payload.UnmarshalText([]byte(parts[1])) != nil {
		return c
	}
	json.Unmarshal(payload, &c)
	return c
}

// post sends a delivery straight to a receiver and returns the status and
// the RFC 8935 error code.
func post(t *testing.T, h http.Handler, method string, d delivery) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, "/sparr/events", bytes.NewReader(d.body))
	req.Header = d.header.Clone()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var e struct {
		Err         string `json:"err"`
		Description string `json:"description"`
	}
	json.Unmarshal(w.Body.Bytes(), &e)
	return w.Code, e.Err
}

// TestReceiverRealDeliveries: a receiver on loopback registered as a real
// endpoint verifies the hub's deliveries, the first before it knows its
// secret, hands each on once with its sequence numbers, and refuses copies
// that were tampered with, are stale or come from elsewhere.
func TestReceiverRealDeliveries(t *testing.T) {
	ctx := context.Background()
	clock := hubtest.NewClock(time.Now())
	hub := hubtest.Start(t, hubtest.Options{Delivery: fast, Clock: clock})
	origin := newClient(t, hub, hub.AddMember(t, "bank-a", api.RoleFlag))
	member := newClient(t, hub, hub.AddMember(t, "bank-b", api.RoleCheck))
	got := newEvents()
	rcvClock := hubtest.NewClock(clock.Now())
	rcv, err := client.NewReceiver(client.ReceiverConfig{Client: member, Handle: got.handle, Now: rcvClock.Now})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{next: rcv}
	srv := httptest.NewServer(rec)
	defer srv.Close()

	// Registered, but the secret is not given to the receiver yet: the
	// verification event verifies under the hub's webhook key.
	secret, _, err := member.RegisterEndpoint(ctx, srv.URL+"/sparr/events")
	if err != nil {
		t.Fatal(err)
	}
	ver := got.waitFor(t, "verification event", ofType(protocol.EventVerification))
	if ver.PreviousSeq != 0 || ver.Seq == 0 || ver.WebhookID == "" || !ver.Delivered() {
		t.Errorf("verification event %+v, want seq, previous 0 and a webhook id", ver)
	}
	rcv.SetSecrets(secret)

	toks, err := origin.Tokenize(ctx, protocol.TypeEmail, "delivered@example.se")
	if err != nil {
		t.Fatal(err)
	}
	placed := place(t, origin, hub.Now(), toks[0])
	e := got.waitFor(t, "flag-placed", ofType(protocol.EventFlagPlaced))
	if e.Seq != placed.Seq || e.PreviousSeq != ver.Seq || e.JWS != placed.RecordJWS || e.Record.ID != placed.Record.ID {
		t.Errorf("delivered %d (previous %d) %s, want %d after %d, the placed record", e.Seq, e.PreviousSeq, e.Record.ID, placed.Seq, ver.Seq)
	}

	orig := rec.last(protocol.EventFlagPlaced)
	n := len(got.all())
	t.Run("replayed", func(t *testing.T) {
		if code, _ := post(t, rcv, http.MethodPost, orig); code != http.StatusAccepted {
			t.Errorf("replay: %d, want 202", code)
		}
		if len(got.all()) != n {
			t.Errorf("a replayed delivery was handed on again")
		}
	})
	t.Run("copies at once", func(t *testing.T) {
		// A second copy of a delivery arrives while the first is still
		// being handled: the event is handed on once, and both are
		// answered 202 once it has been.
		var calls atomic.Int32
		entered, release := make(chan struct{}), make(chan struct{})
		slow, err := client.NewReceiver(client.ReceiverConfig{Client: member, Secrets: []protocol.WebhookSecret{secret}, Now: rcvClock.Now,
			Handle: func(context.Context, *client.Event) error {
				calls.Add(1)
				close(entered)
				<-release
				return nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		waiting := make(chan string, 1)
		client.SetWaitHook(slow, func(id string) { waiting <- id })
		codes := make(chan int, 2)
		deliver := func() {
			code, _ := post(t, slow, http.MethodPost, orig)
			codes <- code
		}
		go deliver()
		<-entered // the first copy is in Handle
		go deliver()
		if id := <-waiting; id != placed.Record.ID { // the second waits for it
			t.Errorf("the second copy waits for record %s, want %s", id, placed.Record.ID)
		}
		close(release)
		for range 2 {
			if code := <-codes; code != http.StatusAccepted {
				t.Errorf("copy answered %d, want 202", code)
			}
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("handed on %d times, want once", n)
		}
	})
	t.Run("stale", func(t *testing.T) {
		rcvClock.Advance(6 * time.Minute)
		defer rcvClock.Advance(-6 * time.Minute)
		if code, errCode := post(t, rcv, http.MethodPost, orig); code != http.StatusBadRequest || errCode != client.CodeAuthenticationFailed {
			t.Errorf("six minutes later: %d %s, want 400 authentication_failed", code, errCode)
		}
	})
	t.Run("tampered", func(t *testing.T) {
		body := bytes.Clone(orig.body)
		body[len(body)/2] ^= 1
		if code, errCode := post(t, rcv, http.MethodPost, delivery{orig.header, body}); code != http.StatusBadRequest || errCode != client.CodeAuthenticationFailed {
			t.Errorf("tampered body: %d %s, want 400 authentication_failed", code, errCode)
		}
		h := orig.header.Clone()
		h.Set(protocol.HeaderSequence, "999")
		// The sequence headers are not signed; the replica never trusts
		// them (see client/replica's TestForwardedDelivery).
		h.Del(protocol.HeaderWebhookSignature)
		if code, errCode := post(t, rcv, http.MethodPost, delivery{h, orig.body}); code != http.StatusBadRequest || errCode != client.CodeInvalidRequest {
			t.Errorf("no signature: %d %s, want 400 invalid_request", code, errCode)
		}
	})
	t.Run("not a delivery", func(t *testing.T) {
		if code, _ := post(t, rcv, http.MethodGet, orig); code != http.StatusMethodNotAllowed {
			t.Errorf("GET: %d, want 405", code)
		}
		h := orig.header.Clone()
		h.Set("Content-Type", "application/json")
		if code, errCode := post(t, rcv, http.MethodPost, delivery{h, orig.body}); code != http.StatusBadRequest || errCode != client.CodeInvalidRequest {
			t.Errorf("JSON: %d %s, want 400 invalid_request", code, errCode)
		}
		big := bytes.Repeat([]byte("a"), client.MaxDeliverySize+1)
		if code, errCode := post(t, rcv, http.MethodPost, delivery{orig.header, big}); code != http.StatusBadRequest || errCode != client.CodeInvalidRequest {
			t.Errorf("over 1 MiB: %d %s, want 400 invalid_request", code, errCode)
		}
	})
	// Cases the hub cannot produce: a valid webhook signature (the
	// member's secret) on a record the hub did not sign, or signed by the
	// hub for another issuer.
	t.Run("record not from the hub", func(t *testing.T) {
		stranger := record(t, signingKey(t), hub.URL, "forged-1")
		other := record(t, hub.Keys.Active(), "https://other.example", "forged-2")
		for _, tc := range []struct {
			body []byte
			want string
		}{{stranger, client.CodeInvalidKey}, {other, client.CodeInvalidIssuer}} {
			// The key set was fetched moments ago; a minute later an
			// unknown key id may fetch it again, and is then refused.
			// (The receiver shares the member client's key cache, which
			// runs on the client's clock, the hub's.)
			clock.Advance(time.Minute)
			rcvClock.Advance(time.Minute)
			d := signed(t, protocol.WebhookSigner{Secrets: []protocol.WebhookSecret{secret}}, rcvClock.Now(), tc.body, 1000, 999)
			if code, errCode := post(t, rcv, http.MethodPost, d); code != http.StatusBadRequest || errCode != tc.want {
				t.Errorf("got %d %s, want 400 %s", code, errCode, tc.want)
			}
		}
	})
	t.Run("unknown key within a minute", func(t *testing.T) {
		ws := protocol.WebhookSigner{Secrets: []protocol.WebhookSecret{secret}}
		// More than a minute since the last fetch: this one fetches, and
		// the key is still unknown.
		d := signed(t, ws, rcvClock.Now(), record(t, signingKey(t), hub.URL, "forged-3"), 1001, 1000)
		if code, errCode := post(t, rcv, http.MethodPost, d); code != http.StatusBadRequest || errCode != client.CodeInvalidKey {
			t.Errorf("a new key id: %d %s, want 400 invalid_key", code, errCode)
		}
		// Just after that fetch, another new key id cannot fetch again: it
		// might be a key the hub has just added, so the hub is asked to
		// try again later rather than give up on the delivery.
		d = signed(t, ws, rcvClock.Now(), record(t, signingKey(t), hub.URL, "forged-4"), 1002, 1001)
		if code, _ := post(t, rcv, http.MethodPost, d); code != http.StatusServiceUnavailable {
			t.Errorf("a new key id just after a fetch: %d, want 503 so the hub tries again later", code)
		}
	})
	t.Run("handler fails", func(t *testing.T) {
		// The member's store fails once: the receiver answers 500 and the
		// hub tries again (at once, on the first failure).
		got.fail.Store(true)
		if _, err := origin.LiftFlag(ctx, placed.Flag.ID); err != nil {
			t.Fatal(err)
		}
		e := got.waitFor(t, "flag-lifted, delivered again", ofType(protocol.EventFlagLifted))
		if e.PreviousSeq != placed.Seq {
			t.Errorf("lift after %d, want after %d", e.PreviousSeq, placed.Seq)
		}
		if n := rec.count(protocol.EventFlagLifted); n != 2 {
			t.Errorf("the lift was delivered %d times, want 2", n)
		}
	})
	// Deliveries the hub signs with a clock ten minutes slow are refused
	// as stale; the hub keeps them as dead letters with the answer.
	t.Run("stale from the hub", func(t *testing.T) {
		clock.Advance(-10 * time.Minute)
		defer clock.Advance(10 * time.Minute)
		place(t, origin, hub.Now(), toks[0])
		e := waitEndpoint(t, member, func(e *api.Endpoint) bool { return e.DeadLetters > 0 })
		if d := e.RecentDeadLetters[0]; d.Status != http.StatusBadRequest || !strings.Contains(d.Response, client.CodeAuthenticationFailed) || !strings.Contains(d.Response, "too old") {
			t.Errorf("dead letter %+v, want 400 authentication_failed: too old", d)
		}
	})
}

// receiverMember is the member the receivers of these tests receive for.
const receiverMember = "bank-b"

// signed makes a delivery of body to receiverMember signed by s at ts,
// with the webhook-id the hub gives it, "<record jti>_<member id>".
func signed(t testing.TB, s protocol.WebhookSigner, ts time.Time, body []byte, seq, prev uint64) delivery {
	t.Helper()
	id := recordID(body)
	if id == "" {
		id = "msg-" + strconv.FormatUint(seq, 10)
	}
	return signedAs(t, s, ts, body, seq, prev, id+"_"+receiverMember)
}

// signedAs makes a delivery of body with webhook-id id signed by s at ts.
func signedAs(t testing.TB, s protocol.WebhookSigner, ts time.Time, body []byte, seq, prev uint64, id string) delivery {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", nil)
	if err := s.SignRequest(req, id, ts, body); err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", protocol.DeliveryContentType)
	req.Header.Set(protocol.HeaderSequence, strconv.FormatUint(seq, 10))
	req.Header.Set(protocol.HeaderPreviousSequence, strconv.FormatUint(prev, 10))
	return delivery{req.Header, body}
}

// fixedReceiver is a receiver that needs no hub: a fixed webhook key and
// record key, and a stopped clock.
func fixedReceiver(t testing.TB, handle func(context.Context, *client.Event) error) (*client.Receiver, ed25519.PrivateKey, *protocol.SigningKey, time.Time) {
	t.Helper()
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	webhook := ed25519.NewKeyFromSeed(seed)
	recKey, err := protocol.NewSigningKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize)), "")
	if err != nil {
		t.Fatal(err)
	}
	set := keySet(t, recKey)
	now := time.Unix(1795255200, 0)
	rcv, err := client.NewReceiver(client.ReceiverConfig{
		Handle:      handle,
		MemberID:    receiverMember,
		WebhookKeys: []ed25519.PublicKey{webhook.Public().(ed25519.PublicKey)},
		Keys: client.NewKeys(client.KeysConfig{Issuer: issuer, Now: func() time.Time { return now },
			Source: client.KeySourceFunc(func(context.Context) (*protocol.KeySet, error) { return set, nil })}),
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return rcv, webhook, recKey, now
}

// FuzzReceiver feeds the receiver deliveries with arbitrary headers and
// bodies: it must never panic, must answer 202, 400 or 405 (503 for a key
// id it may fetch later), and may hand on only what verifies.
func FuzzReceiver(f *testing.F) {
	var handled []*client.Event
	rcv, webhook, recKey, now := fixedReceiver(f, func(_ context.Context, e *client.Event) error {
		handled = append(handled, e)
		return nil
	})
	good := signed(f, protocol.WebhookSigner{Keys: []ed25519.PrivateKey{webhook}}, now, record(f, recKey, issuer, "fuzz-1"), 42, 37)
	add := func(d delivery) {
		f.Add(d.header.Get(protocol.HeaderWebhookID), d.header.Get(protocol.HeaderWebhookTimestamp), d.header.Get(protocol.HeaderWebhookSignature),
			d.header.Get(protocol.HeaderSequence), d.header.Get(protocol.HeaderPreviousSequence), d.header.Get("Content-Type"), d.body)
	}
	add(good)
	add(signed(f, protocol.WebhookSigner{Keys: []ed25519.PrivateKey{webhook}}, now.Add(-time.Hour), record(f, recKey, issuer, "fuzz-2"), 43, 42))
	add(signed(f, protocol.WebhookSigner{Keys: []ed25519.PrivateKey{webhook}}, now, []byte("not.a.record"), 44, 43))
	add(delivery{http.Header{"Content-Type": {protocol.DeliveryContentType}}, nil})
	f.Fuzz(func(t *testing.T, id, ts, sig, seq, prev, ct string, body []byte) {
		handled = handled[:0]
		h := http.Header{}
		for k, v := range map[string]string{protocol.HeaderWebhookID: id, protocol.HeaderWebhookTimestamp: ts, protocol.HeaderWebhookSignature: sig,
			protocol.HeaderSequence: seq, protocol.HeaderPreviousSequence: prev, "Content-Type": ct} {
			if v != "" {
				h[http.CanonicalHeaderKey(k)] = []string{v}
			}
		}
		code, errCode := post(t, rcv, http.MethodPost, delivery{h, body})
		switch code {
		case http.StatusAccepted:
			if len(handled) > 1 || (len(handled) == 1 && handled[0].JWS != string(body)) {
				t.Fatalf("handed on %d events for one delivery", len(handled))
			}
			if err := (protocol.WebhookVerifier{PublicKeys: []ed25519.PublicKey{webhook.Public().(ed25519.PublicKey)}}).Verify(id, ts, sig, body, now); err != nil {
				t.Fatalf("accepted a delivery whose signature does not verify: %v", err)
			}
			if _, err := protocol.VerifyRecord(body, keySet(t, recKey)); err != nil {
				t.Fatalf("accepted a record that does not verify: %v", err)
			}
		case http.StatusBadRequest:
			if errCode == "" || len(handled) != 0 {
				t.Fatalf("400 with err %q after handing on %d events", errCode, len(handled))
			}
		case http.StatusServiceUnavailable:
		default:
			t.Fatalf("status %d", code)
		}
	})
}

// TestReceiverVerify checks the answer codes on deliveries made with keys
// the test controls.
func TestReceiverVerify(t *testing.T) {
	var n int
	rcv, webhook, recKey, now := fixedReceiver(t, func(context.Context, *client.Event) error { n++; return nil })
	sign := protocol.WebhookSigner{Keys: []ed25519.PrivateKey{webhook}}
	body := record(t, recKey, issuer, "v-1")
	_, otherPriv, _ := ed25519.GenerateKey(nil)
	for _, tc := range []struct {
		name string
		d    delivery
		code int
		err  string
	}{
		{"good", signed(t, sign, now, body, 5, 4), 202, ""},
		{"another webhook key", signed(t, protocol.WebhookSigner{Keys: []ed25519.PrivateKey{otherPriv}}, now, body, 6, 5), 400, client.CodeAuthenticationFailed},
		{"from the future", signed(t, sign, now.Add(6*time.Minute), body, 7, 6), 400, client.CodeAuthenticationFailed},
		{"at the tolerance", signed(t, sign, now.Add(-5*time.Minute), record(t, recKey, issuer, "v-2"), 8, 7), 202, ""},
		{"previous not below", signed(t, sign, now, record(t, recKey, issuer, "v-3"), 9, 9), 400, client.CodeInvalidRequest},
		{"sequence with a sign", signed(t, sign, now, record(t, recKey, issuer, "v-4"), 10, 9), 400, client.CodeInvalidRequest},
		// Signed by the hub, but for another member, who passed it on.
		{"another member's delivery", signedAs(t, sign, now, record(t, recKey, issuer, "v-5"), 11, 10, "v-5_bank-c"), 400, client.CodeAuthenticationFailed},
		{"to a member whose id ends alike", signedAs(t, sign, now, record(t, recKey, issuer, "v-6"), 12, 11, "v-6_a_bank-b"), 400, client.CodeAuthenticationFailed},
		{"another record's webhook-id", signedAs(t, sign, now, record(t, recKey, issuer, "v-7"), 13, 12, "v-1_bank-b"), 400, client.CodeAuthenticationFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "sequence with a sign" {
				tc.d.header.Set(protocol.HeaderSequence, "+10")
			}
			code, errCode := post(t, rcv, http.MethodPost, tc.d)
			if code != tc.code || errCode != tc.err {
				t.Errorf("got %d %q, want %d %q", code, errCode, tc.code, tc.err)
			}
		})
	}
	if n != 2 {
		t.Errorf("handed on %d events, want 2", n)
	}
}

// TestReceiverHandlePanics: a Handle that panics leaves no claim behind:
// the next copy of the delivery is handed on again, not made to wait for
// a handler that will never finish, and the panic did not mark the record
// as handled.
func TestReceiverHandlePanics(t *testing.T) {
	var calls atomic.Int32
	rcv, webhook, recKey, now := fixedReceiver(t, func(context.Context, *client.Event) error {
		if calls.Add(1) == 1 {
			panic("the member's store blew up")
		}
		return nil
	})
	d := signed(t, protocol.WebhookSigner{Keys: []ed25519.PrivateKey{webhook}}, now, record(t, recKey, issuer, "p-1"), 5, 4)
	func() {
		defer func() {
			if v := recover(); v == nil {
				t.Fatal("Handle's panic did not reach the server")
			}
		}()
		post(t, rcv, http.MethodPost, d)
	}()
	// The copy delivered again comes with a request whose context is
	// already done: a copy that found the record still claimed would give
	// up waiting at once and answer 503.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/sparr/events", bytes.NewReader(d.body))
	req.Header = d.header.Clone()
	w := httptest.NewRecorder()
	rcv.ServeHTTP(w, req)
	if w.Code != http.StatusAccepted || calls.Load() != 2 {
		t.Errorf("the copy after a panic: got %d after %d calls of Handle, want 202 after 2", w.Code, calls.Load())
	}
}
