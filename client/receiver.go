package client

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// MaxDeliverySize is the largest delivery body a [Receiver] reads.
const MaxDeliverySize = 1 << 20

// DefaultDedupSize is how many record ids a [Receiver] remembers to skip
// repeated deliveries.
const DefaultDedupSize = 10_000

// The RFC 8935 error codes a [Receiver] answers with.
const (
	// CodeInvalidRequest: the delivery is not one: wrong method or media
	// type, too large, missing or malformed headers, or a body that is not
	// a record.
	CodeInvalidRequest = "invalid_request"
	// CodeAuthenticationFailed: no webhook signature verifies under the
	// member's secrets or the hub's webhook key, the timestamp is more
	// than the tolerance away from the receiver's clock, or the delivery
	// is another member's ([ErrWrongRecipient]). In each case the request
	// is well formed but does not show the hub sending this delivery to
	// this member now: RFC 8935's "could not authenticate the SET
	// Transmitter".
	CodeAuthenticationFailed = "authentication_failed"
	// CodeInvalidKey: the record's signature does not verify under the
	// hub's published keys.
	CodeInvalidKey = "invalid_key"
	// CodeInvalidIssuer: the record is from another issuer than the hub.
	CodeInvalidIssuer = "invalid_issuer"
)

// ErrWrongRecipient is returned by [Receiver.Verify], inside a
// [*DeliveryError] with CodeAuthenticationFailed, for a delivery whose
// webhook-id is not [protocol.DeliveryID] of the record in its body and
// the receiver's member: the hub's delivery to another member, which
// that member passed on. Its signature verifies (every delivery carries a
// v1a signature under the hub's one webhook key, which every member
// trusts), so the webhook-id, which the signature covers, is what shows
// whom the hub sent it to.
var ErrWrongRecipient = errors.New("delivery to another member")

// A DeliveryError is why a [Receiver] refused a delivery: the RFC 8935
// error code it answered with (CodeInvalidRequest and its siblings) and
// the cause.
type DeliveryError struct {
	Code string
	Err  error
}

func (e *DeliveryError) Error() string { return e.Code + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *DeliveryError) Unwrap() error { return e.Err }

// ReceiverConfig configures [NewReceiver]. Handle is required, and so is
// Client, or else WebhookKeys, Keys and MemberID.
type ReceiverConfig struct {
	// Handle is given every verified delivery, once: the event's record,
	// its sequence number and the previous one. An error answers 500, and
	// the hub delivers the event again later.
	Handle func(ctx context.Context, e *Event) error
	// Client supplies the hub's webhook key (from its configuration
	// document), verifies records against the hub's keys, and names the
	// member.
	Client *Client
	// MemberID is the member whose deliveries the receiver accepts;
	// default Client.MemberID(). A delivery to another member is
	// refused ([ErrWrongRecipient]).
	MemberID string
	// Secrets are the member's whsec_ secrets. They may be set later, with
	// [Receiver.SetSecrets]: until then deliveries verify with the hub's
	// webhook key alone, as the first one, the verification event, must.
	Secrets []protocol.WebhookSecret
	// WebhookKeys are hub webhook keys to trust besides (or, without
	// Client, instead of) the one in the hub's configuration document.
	WebhookKeys []ed25519.PublicKey
	// Keys verifies records; nil means Client.Keys().
	Keys *Keys
	// Now is the receiver's clock; nil means time.Now.
	Now func() time.Time
	// Tolerance is how far a delivery's timestamp may be from Now; default
	// protocol.DefaultWebhookTolerance, 5 minutes.
	Tolerance time.Duration
	// DedupSize is how many record ids to remember; default
	// DefaultDedupSize.
	DedupSize int
	// Logger receives a line for each refused delivery; nil discards them.
	Logger *slog.Logger
}

// A Receiver is a member's webhook endpoint, an http.Handler to mount at
// the URL registered with [Client.RegisterEndpoint]. For each delivery it
// reads the raw body (at most MaxDeliverySize), checks the Standard
// Webhooks signature (under the member's secrets or the hub's webhook key)
// and timestamp, checks that the delivery is to its member, verifies the
// record against the hub's keys, skips a record it has already handled,
// and hands the event to Handle; then it answers 202. A delivery that does not verify is answered 400 with an RFC 8935
// error, {"err":"authentication_failed","description":"…"}; a failure of
// Handle is answered 500, so the hub tries again.
type Receiver struct {
	cfg  ReceiverConfig
	log  *slog.Logger
	seen *lru[string, struct{}]

	// handling holds the ids of records being handed to Handle, each
	// with a channel closed when that is done, so that a copy of a
	// delivery arriving meanwhile waits for the first instead of being
	// handed on twice.
	handlingMu sync.Mutex
	handling   map[string]chan struct{}
	// waiting, if set, is called when a copy starts to wait (for tests).
	waiting func(id string)

	mu      sync.RWMutex
	secrets []protocol.WebhookSecret
}

var _ http.Handler = (*Receiver)(nil)

// NewReceiver returns a receiver for cfg.
func NewReceiver(cfg ReceiverConfig) (*Receiver, error) {
	if cfg.Handle == nil {
		return nil, errors.New("client: ReceiverConfig.Handle is required")
	}
	if cfg.Keys == nil && cfg.Client != nil {
		cfg.Keys = cfg.Client.Keys()
	}
	if cfg.MemberID == "" && cfg.Client != nil {
		cfg.MemberID = cfg.Client.MemberID()
	}
	if cfg.Keys == nil || (cfg.Client == nil && len(cfg.WebhookKeys) == 0) || cfg.MemberID == "" {
		return nil, errors.New("client: ReceiverConfig needs Client, or WebhookKeys, Keys and MemberID")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Tolerance <= 0 {
		cfg.Tolerance = protocol.DefaultWebhookTolerance
	}
	if cfg.DedupSize <= 0 {
		cfg.DedupSize = DefaultDedupSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Receiver{cfg: cfg, log: cfg.Logger, seen: newLRU[string, struct{}](cfg.DedupSize), handling: make(map[string]chan struct{})}
	r.SetSecrets(cfg.Secrets...)
	return r, nil
}

// SetSecrets replaces the member's secrets the receiver trusts.
func (r *Receiver) SetSecrets(secrets ...protocol.WebhookSecret) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets = nil
	for _, s := range secrets {
		if !zeroSecret(s) {
			r.secrets = append(r.secrets, s)
		}
	}
}

// zeroSecret reports whether s holds no key, as the secret RegisterEndpoint
// returns for an endpoint that already had one.
func zeroSecret(s protocol.WebhookSecret) bool {
	return s.Encode() == (protocol.WebhookSecret{}).Encode()
}

// AddSecret adds a secret to those the receiver trusts, as after
// [Client.RotateSecret]. Drop the old one with SetSecrets once it no longer
// signs.
func (r *Receiver) AddSecret(s protocol.WebhookSecret) {
	if zeroSecret(s) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.ContainsFunc(r.secrets, func(x protocol.WebhookSecret) bool { return x.Encode() == s.Encode() }) {
		r.secrets = append(r.secrets, s)
	}
}

// ServeHTTP receives one delivery.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.refuse(w, http.StatusMethodNotAllowed, &DeliveryError{CodeInvalidRequest, fmt.Errorf("%s is not allowed; the hub POSTs deliveries", req.Method)})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, MaxDeliverySize))
	if err != nil {
		r.refuse(w, http.StatusBadRequest, &DeliveryError{CodeInvalidRequest, fmt.Errorf("reading the body: %w", err)})
		return
	}
	if mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); mt != protocol.DeliveryContentType {
		r.refuse(w, http.StatusBadRequest, &DeliveryError{CodeInvalidRequest, fmt.Errorf("Content-Type is %q, want %s", req.Header.Get("Content-Type"), protocol.DeliveryContentType)})
		return
	}
	e, err := r.Verify(req.Context(), req.Header, body)
	var de *DeliveryError
	var re *RecordError
	switch {
	case errors.As(err, &re) && re.RetryAfter > 0:
		// A key the hub may have just added: ask for the delivery again
		// once the key set may be fetched again.
		w.Header().Set("Retry-After", strconv.Itoa(int((re.RetryAfter+time.Second-1)/time.Second)))
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"err": "temporarily_unavailable", "description": "the record's key is not yet known here; deliver it again later"})
		return
	case errors.As(err, &de):
		r.refuse(w, http.StatusBadRequest, de)
		return
	case err != nil:
		// Not the delivery's fault: the hub's keys could not be fetched.
		r.log.Error("webhook delivery not verified: the receiver could not get the hub's keys", "error", err)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"err": "temporarily_unavailable", "description": "the receiver cannot verify deliveries right now; try again"})
		return
	}
	first, err := r.claim(req.Context(), e.Record.ID)
	switch {
	case err != nil:
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"err": "temporarily_unavailable", "description": "a copy of this delivery is still being handled; deliver it again later"})
		return
	case !first:
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if err := r.handle(req.Context(), e); err != nil {
		r.log.Error("webhook delivery verified but not handled; the hub will deliver it again", "seq", e.Seq, "type", e.Type.Short(), "error", err)
		writeJSON(w, http.StatusInternalServerError, map[string]string{"err": "internal_error", "description": "the receiver could not store the event; deliver it again later"})
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// handle hands e to Handle under the claim on its record, and releases
// the claim however Handle ends, a panic included; only a record Handle
// returned nil for is remembered as handled, so a copy delivered again is
// handed on again.
func (r *Receiver) handle(ctx context.Context, e *Event) error {
	handled := false
	defer func() { r.release(e.Record.ID, handled) }()
	err := r.cfg.Handle(ctx, e)
	handled = err == nil
	return err
}

// claim reports whether the record id is to be handed to Handle now: false
// if it has been handled already. While another copy of the same record is
// being handled, claim waits for it (or for ctx) first. A claim that
// returns true must be released.
func (r *Receiver) claim(ctx context.Context, id string) (bool, error) {
	for {
		r.handlingMu.Lock()
		if _, dup := r.seen.get(id); dup {
			r.handlingMu.Unlock()
			return false, nil
		}
		busy, ok := r.handling[id]
		if !ok {
			r.handling[id] = make(chan struct{})
			r.handlingMu.Unlock()
			return true, nil
		}
		r.handlingMu.Unlock()
		if r.waiting != nil {
			r.waiting(id)
		}
		select {
		case <-busy:
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

// release ends a claim, remembering the id as handled if it was.
func (r *Receiver) release(id string, handled bool) {
	r.handlingMu.Lock()
	defer r.handlingMu.Unlock()
	if handled {
		r.seen.add(id, struct{}{})
	}
	close(r.handling[id])
	delete(r.handling, id)
}

// Verify checks one delivery, given its headers and raw body, and returns
// its event: its signature and timestamp, that its webhook-id is
// [protocol.DeliveryID] of its record and this receiver's member, and the
// record. A delivery that does not verify gives a [*DeliveryError];
// any other error means the receiver could not get what it verifies with,
// and the delivery may be tried again. Verify does not skip repeated
// deliveries; ServeHTTP does.
func (r *Receiver) Verify(ctx context.Context, h http.Header, body []byte) (*Event, error) {
	v, err := r.verifier(ctx)
	if err != nil {
		return nil, err
	}
	if err := v.VerifyHeaders(h, body, r.cfg.Now()); err != nil {
		code := CodeAuthenticationFailed
		switch {
		case errors.Is(err, protocol.ErrWebhookMissingHeader), errors.Is(err, protocol.ErrWebhookMalformed):
			code = CodeInvalidRequest
		case errors.Is(err, protocol.ErrWebhookNoKeys), errors.Is(err, protocol.ErrWebhookKey):
			return nil, err
		}
		return nil, &DeliveryError{code, err}
	}
	seq, err1 := parseSeq(h.Get(protocol.HeaderSequence))
	prev, err2 := parseSeq(h.Get(protocol.HeaderPreviousSequence))
	if err := errors.Join(err1, err2); err != nil || seq == 0 || prev >= seq {
		return nil, &DeliveryError{CodeInvalidRequest, fmt.Errorf("%s %q and %s %q: want sequence numbers, the previous one below",
			protocol.HeaderSequence, h.Get(protocol.HeaderSequence), protocol.HeaderPreviousSequence, h.Get(protocol.HeaderPreviousSequence))}
	}
	rec, err := r.cfg.Keys.Verify(ctx, body)
	var re *RecordError
	switch {
	case errors.As(err, &re) && re.RetryAfter > 0:
		return nil, re
	case errors.As(err, &re):
		code := CodeInvalidRequest
		switch {
		case errors.Is(err, protocol.ErrUnknownKey), errors.Is(err, protocol.ErrBadSignature):
			code = CodeInvalidKey
		case errors.Is(err, ErrWrongIssuer):
			code = CodeInvalidIssuer
		}
		return nil, &DeliveryError{code, re.Err}
	case err != nil:
		return nil, err
	}
	id := h.Get(protocol.HeaderWebhookID)
	if id != protocol.DeliveryID(rec.ID, r.cfg.MemberID) {
		return nil, &DeliveryError{CodeAuthenticationFailed, fmt.Errorf("%w: %s %q is not the delivery of record %q to member %q", ErrWrongRecipient, protocol.HeaderWebhookID, id, rec.ID, r.cfg.MemberID)}
	}
	return &Event{Seq: seq, PreviousSeq: prev, WebhookID: id, Type: rec.Event.EventType(), JWS: string(body), Record: rec,
		Via: protocol.SplitVia(h.Get(protocol.HeaderVia))}, nil
}

// verifier returns the webhook verifier for the secrets and keys trusted
// now.
func (r *Receiver) verifier(ctx context.Context) (protocol.WebhookVerifier, error) {
	keys := r.cfg.WebhookKeys
	if r.cfg.Client != nil {
		key, err := r.cfg.Client.hubWebhookKey(ctx)
		if err != nil {
			return protocol.WebhookVerifier{}, err
		}
		keys = append(slices.Clip(keys), key)
	}
	r.mu.RLock()
	secrets := r.secrets
	r.mu.RUnlock()
	return protocol.WebhookVerifier{Secrets: secrets, PublicKeys: keys, Tolerance: r.cfg.Tolerance}, nil
}

// parseSeq parses a sequence header: a decimal number without sign or
// leading zeros.
func parseSeq(s string) (uint64, error) {
	if s == "" || len(s) > 20 || (len(s) > 1 && s[0] == '0') {
		return 0, fmt.Errorf("not a sequence number: %q", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("not a sequence number: %q", s)
		}
	}
	return strconv.ParseUint(s, 10, 64)
}

// refuse answers an RFC 8935 error.
func (r *Receiver) refuse(w http.ResponseWriter, status int, de *DeliveryError) {
	r.log.Warn("webhook delivery refused", "err", de.Code, "reason", de.Err.Error())
	writeJSON(w, status, map[string]string{"err": de.Code, "description": de.Err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
