package client

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// Retry is how a [Client] retries a request that failed for a reason that
// may pass. What is retried depends on whether the hub answers a repeat of
// the request as it answered the first:
//
//   - Reads (backups and log reads included), token evaluations, signed
//     submissions (which the hub answers by their jti: the client sends
//     the same signed bytes again), removing the endpoint, and the
//     operator's member updates, suspensions and resumptions are retried
//     after no answer, 429 (after its Retry-After), 502, 503 or 504.
//   - The other calls act anew each time they reach the hub: a check, a
//     report of replica checks or a request for suspicion details is
//     logged again, an outcome reported twice is refused, registering an
//     endpoint answers its secret only the first time, a rotation rotates
//     again, a member registered twice is refused, an erasure erases and
//     tells every member again. They are retried only when the hub
//     certainly did not act on them: when the connection could not be
//     made, after a 429, after the hub's own "unavailable" problem (which
//     it answers only before acting), or after a 503 with Retry-After.
//     Otherwise the error is returned, and the caller finds out what
//     happened ([Client.Endpoint], say) before it tries again.
//
// [Client.Raw] is never retried. A Retry-After of 0 retries at once.
//
// # Several URLs
//
// A client given several URLs of one hub (Config.HubURLs: the nodes of a
// cluster) sends each request to the URL that answered last, and fails
// over to the next one when that one could not be reached, did not begin
// to answer within AttemptTimeout, or answered 502, 503 or 504: by the
// same rules, so that a request the hub may have acted on is not sent to
// another node either. A request sent again to a URL it has not yet tried
// in this call goes at once; when every URL was tried, the client waits
// as above before the next round. A signed submission is safe to send to
// another node: every node applies the same replicated submissions, and
// the hub answers a repeat of a jti it stored with the stored outcome.
//
// Zero fields mean the defaults.
type Retry struct {
	// Attempts is how many times a request is sent at most; default 4
	// times the number of URLs. 1 turns retrying off.
	Attempts int
	// Backoff is the wait before the first retry, doubled (with jitter)
	// before each further one; default 250 ms.
	Backoff time.Duration
	// MaxWait is the longest the client waits before one retry; a
	// Retry-After longer than this is returned to the caller as an
	// [ErrRateLimited] or [ErrUnavailable] problem instead. Default 30 s.
	MaxWait time.Duration
	// AnsweredOnly retries only requests answered with 429, 502, 503 or
	// 504, never one that failed without an answer, such as one to a hub
	// that cannot be reached: for tools that should say so at once.
	AnsweredOnly bool
	// AttemptTimeout is how long one attempt may wait for the hub to begin
	// to answer before the client gives it up and treats it as sent
	// without an answer (a repeatable request is sent again, to the next
	// URL if there are several). Default: none with one URL (the
	// HTTPClient's own limit), 10 s with several, so that a node that
	// accepts connections but does not answer (paused, or cut off from
	// the others) is left for another.
	AttemptTimeout time.Duration
}

func (r *Retry) defaults(urls int) {
	if r.Attempts <= 0 {
		r.Attempts = 4 * urls
	}
	if r.AttemptTimeout <= 0 && urls > 1 {
		r.AttemptTimeout = 10 * time.Second
	}
	if r.Backoff <= 0 {
		r.Backoff = 250 * time.Millisecond
	}
	if r.MaxWait <= 0 {
		r.MaxWait = 30 * time.Second
	}
}

// Config configures [New]. HubURL (or HubURLs), MemberID and Key are
// required.
type Config struct {
	// HubURL is where the hub answers, such as https://hub.example.
	HubURL string
	// HubURLs are further URLs at which the same hub answers, such as the
	// nodes of a cluster; the client fails over between HubURL and these
	// (see [Retry]). HubURL may be left empty when HubURLs names them all.
	HubURLs []string
	// MemberID is the id the operator registered the member under.
	MemberID string
	// Key signs the member's bearer tokens and submissions; its public
	// half is registered with the operator.
	Key *protocol.SigningKey
	// HTTPClient sends the requests; nil means a client that gives up on a
	// request the hub has not begun to answer within a minute. Bound whole
	// calls with their contexts (a large snapshot takes a while to read).
	HTTPClient *http.Client
	// Now is the clock, used for bearer tokens, submissions and as the
	// reference date of personnummer; nil means time.Now.
	Now func() time.Time
	// Logger receives a line for each retry; nil discards them.
	Logger *slog.Logger
	// Retry says how failed requests are retried.
	Retry Retry
	// TokenCacheSize is how many tokens to remember; default
	// DefaultTokenCacheSize, negative for none.
	TokenCacheSize int
	// KeyRefresh is the least time between two fetches of the hub's keys
	// caused by records naming a key the client does not hold; default
	// DefaultKeyRefresh.
	KeyRefresh time.Duration
}

// A Client is a member's connection to a Spärr hub. It reads the hub's
// configuration document on first use, signs the member's bearer tokens
// and submissions, verifies every record the hub sends against the hub's
// published keys, and retries what may be retried. It is safe for
// concurrent use.
type Client struct {
	cfg Config
	// bases are the hub's URLs without a trailing slash; cur is the index
	// of the one that answered last.
	bases []string
	cur   atomic.Int32
	http  *http.Client
	log   *slog.Logger

	keys     *Keys
	verifier *Verifier
	tokens   *Tokenizer

	confMu     sync.Mutex
	conf       *api.Configuration
	webhookKey ed25519.PublicKey

	bearerMu  sync.Mutex
	bearer    string
	bearerExp time.Time
}

var (
	_ KeySource = (*Client)(nil)
	_ Evaluator = (*Client)(nil)
)

// New returns a client for cfg. It does not contact the hub.
func New(cfg Config) (*Client, error) {
	switch {
	case cfg.HubURL == "" && len(cfg.HubURLs) == 0:
		return nil, errors.New("client: Config.HubURL is required")
	case cfg.MemberID == "":
		return nil, errors.New("client: Config.MemberID is required")
	case cfg.Key == nil:
		return nil, errors.New("client: Config.Key is required")
	}
	var bases []string
	for i, raw := range append([]string{cfg.HubURL}, cfg.HubURLs...) {
		if i == 0 && raw == "" {
			continue
		}
		field := "HubURL"
		if i > 0 {
			field = fmt.Sprintf("HubURLs[%d]", i-1)
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("client: Config.%s %q: want the hub's URL, such as https://hub.example", field, raw)
		}
		if b := strings.TrimSuffix(raw, "/"); !slices.Contains(bases, b) {
			bases = append(bases, b)
		}
	}
	if cfg.HTTPClient == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.ResponseHeaderTimeout = time.Minute
		t.MaxIdleConnsPerHost = 16
		cfg.HTTPClient = &http.Client{Transport: t}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Retry.defaults(len(bases))
	c := &Client{cfg: cfg, bases: bases, http: cfg.HTTPClient, log: cfg.Logger}
	c.keys = NewKeys(KeysConfig{Source: c, MinRefresh: cfg.KeyRefresh, Now: cfg.Now})
	homes := &homeKeys{c: c}
	c.verifier = &Verifier{Keys: c.keys, Homes: homes.keys}
	c.tokens = NewTokenizer(TokenizerConfig{Evaluator: c, CacheSize: cfg.TokenCacheSize, Now: cfg.Now})
	return c, nil
}

// HubURLs returns the URLs the client sends requests to, in the order it
// tries them, the first the one that answered last.
func (c *Client) HubURLs() []string {
	cur := int(c.cur.Load())
	return append(slices.Clone(c.bases[cur:]), c.bases[:cur]...)
}

// MemberID returns the member the client acts for.
func (c *Client) MemberID() string { return c.cfg.MemberID }

// Keys returns the client's cache of the hub's record-signing keys, which
// verifies every record the client returns.
func (c *Client) Keys() *Keys { return c.keys }

// Verifier returns the verifier that checks every answer the client
// returns, over [Client.Keys].
func (c *Client) Verifier() *Verifier { return c.verifier }

// Configuration returns the hub's configuration document, fetched on first
// use, checked (an issuer, a key set URL and a webhook key it can use) and
// cached until [Client.Refresh]. The caller must not change it.
func (c *Client) Configuration(ctx context.Context) (*api.Configuration, error) {
	c.confMu.Lock()
	defer c.confMu.Unlock()
	if c.conf != nil {
		return c.conf, nil
	}
	return c.fetchConfiguration(ctx)
}

// Refresh fetches the hub's configuration document and keys again, as after
// the operator announced a key rotation.
func (c *Client) Refresh(ctx context.Context) error {
	c.confMu.Lock()
	_, err := c.fetchConfiguration(ctx)
	c.confMu.Unlock()
	if err != nil {
		return err
	}
	return c.keys.Refresh(ctx)
}

// fetchConfiguration fetches and caches the configuration; the caller
// holds confMu.
func (c *Client) fetchConfiguration(ctx context.Context) (*api.Configuration, error) {
	conf := new(api.Configuration)
	if err := c.call(ctx, request{method: http.MethodGet, path: api.ConfigurationPath, anonymous: true}, conf); err != nil {
		return nil, fmt.Errorf("read the hub's configuration: %w", err)
	}
	if conf.Issuer == "" {
		return nil, fmt.Errorf("read the hub's configuration: %s%s has no issuer; is it a Spärr hub?", c.bases[c.cur.Load()], api.ConfigurationPath)
	}
	key, err := conf.WebhookKey()
	if err != nil {
		return nil, fmt.Errorf("read the hub's configuration: webhook_public_key: %w", err)
	}
	if u, err := url.Parse(conf.JWKSURI); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("read the hub's configuration: jwks_uri %q: want the URL of the hub's key set", conf.JWKSURI)
	}
	c.keys.setIssuer(conf.Issuer)
	homes := map[string]KeySource{}
	for _, h := range conf.HomeTokens {
		if u, err := url.Parse(h.Issuer); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
			homes[h.Issuer] = c.homeKeys(h.Issuer)
		}
	}
	c.keys.SetHomes(homes)
	c.tokens.setBatchSize(conf.Policy.MaxTokensPerRequest)
	c.conf, c.webhookKey = conf, key
	return conf, nil
}

// hubWebhookKey returns the hub's Ed25519 key of v1a webhook signatures,
// from its configuration document.
func (c *Client) hubWebhookKey(ctx context.Context) (ed25519.PublicKey, error) {
	if _, err := c.Configuration(ctx); err != nil {
		return nil, err
	}
	c.confMu.Lock()
	defer c.confMu.Unlock()
	return c.webhookKey, nil
}

// issuer returns the hub's issuer URL, the audience of what the member signs.
func (c *Client) issuer(ctx context.Context) (string, error) {
	conf, err := c.Configuration(ctx)
	if err != nil {
		return "", err
	}
	return conf.Issuer, nil
}

// homeKeys returns the source of the record-signing keys of a home hub,
// a hub peered with the client's, whose issuer URL is iss: its
// /.well-known/jwks.json.
func (c *Client) homeKeys(iss string) KeySource {
	return KeySourceFunc(func(ctx context.Context) (*protocol.KeySet, error) {
		resp, err := c.send(ctx, request{method: http.MethodGet, url: strings.TrimSuffix(iss, "/") + "/.well-known/jwks.json", anonymous: true})
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, protocol.MaxKeySetSize+1))
		if err != nil {
			return nil, fmt.Errorf("read the keys of home hub %s: %w", iss, err)
		}
		return protocol.ParseKeySet(body)
	})
}

// FetchKeys fetches the hub's record-signing keys from the jwks_uri of its
// configuration document. It makes the client a [KeySource]; members
// verify records with [Client.Keys] instead.
func (c *Client) FetchKeys(ctx context.Context) (*protocol.KeySet, error) {
	conf, err := c.Configuration(ctx)
	if err != nil {
		return nil, err
	}
	r := request{method: http.MethodGet, url: conf.JWKSURI, anonymous: true}
	if p, ok := strings.CutPrefix(conf.JWKSURI, strings.TrimSuffix(conf.Issuer, "/")+"/"); ok && len(c.bases) > 1 {
		// Every node of the hub serves its keys: fetch them from the
		// nodes, with failover, not from the one issuer URL.
		r = request{method: http.MethodGet, path: "/" + p, anonymous: true}
	}
	resp, err := c.send(ctx, r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, protocol.MaxKeySetSize+1))
	if err != nil {
		return nil, fmt.Errorf("read the hub's keys: %w", err)
	}
	return protocol.ParseKeySet(body)
}

// Evaluate sends one batch of blinded identifiers to POST /v1/tokens. It
// makes the client an [Evaluator]; members call [Client.Tokenize] instead.
func (c *Client) Evaluate(ctx context.Context, req *protocol.TokenRequest) (*protocol.TokenResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	out := new(protocol.TokenResponse)
	// An evaluation is answered the same however often it is asked for;
	// a repeat only counts the batch in the log again.
	if err := c.call(ctx, request{method: http.MethodPost, path: "/v1/tokens", contentType: "application/json", body: body, idempotent: true}, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Tokenize returns the tokens of identifiers of one type, in order. It
// canonicalizes each identifier (with Config.Now's date as the reference
// date), takes the tokens it remembers from its cache, and has the hub
// evaluate the others obliviously, in batches of at most 100 (fewer if the
// hub's policy says so), checking the hub's proof against its published
// key. Identifiers of another country whose hub is peered with this one
// are evaluated by that home hub, through this one, under the home hub's
// key the hub publishes (api.Configuration.TokenKeyFor). An identifier
// that is not valid
// gives an error wrapping a [*protocol.IdentifierError], which never
// contains the identifier. A proof that fails gives a [*TokenProofError].
func (c *Client) Tokenize(ctx context.Context, typ protocol.IdentifierType, values ...string) ([]protocol.Token, error) {
	conf, err := c.Configuration(ctx)
	if err != nil {
		return nil, err
	}
	toks, err := c.tokens.Tokenize(ctx, conf.TokenKeyFor(typ), typ, values...)
	var p *Problem
	if errors.As(err, &p) && p.Slug() == "invalid-token-request" {
		// The hub may have moved to a new token epoch: read its key again
		// and try once more.
		if rerr := c.Refresh(ctx); rerr != nil {
			return nil, err
		}
		if conf, err = c.Configuration(ctx); err != nil {
			return nil, err
		}
		toks, err = c.tokens.Tokenize(ctx, conf.TokenKeyFor(typ), typ, values...)
	}
	return toks, err
}

// bearerMargin is how long before its expiry a bearer token is replaced.
const bearerMargin = time.Minute

// bearerToken returns a bearer token, minting a new one when there is none
// or the last is within a minute of its expiry.
func (c *Client) bearerToken(ctx context.Context) (string, error) {
	aud, err := c.issuer(ctx)
	if err != nil {
		return "", err
	}
	c.bearerMu.Lock()
	defer c.bearerMu.Unlock()
	now := c.cfg.Now()
	if c.bearer != "" && now.Add(bearerMargin).Before(c.bearerExp) && !now.Before(c.bearerExp.Add(-protocol.MaxBearerLifetime)) {
		return c.bearer, nil
	}
	tok, err := protocol.NewBearer(c.cfg.Key, c.cfg.MemberID, aud, now, protocol.MaxBearerLifetime)
	if err != nil {
		return "", fmt.Errorf("mint a bearer token: %w", err)
	}
	c.bearer, c.bearerExp = tok, now.Add(protocol.MaxBearerLifetime)
	return tok, nil
}

// A request is one call of the hub's API.
type request struct {
	method, path string
	// url, if set, is the whole URL, in place of the hub's URL and path.
	url         string
	contentType string
	body        []byte
	// anonymous requests carry no bearer token (discovery).
	anonymous bool
	// idempotent requests are answered the same however often the hub
	// gets them, so they may be sent again whenever an answer is lost. GET
	// requests are.
	idempotent bool
	// accept is the Accept header; empty means JSON or a problem. raw
	// requests ([Client.Raw]) carry none.
	accept string
	raw    bool
}

func (r request) op() string {
	p := r.path
	if u, err := url.Parse(r.url); r.url != "" && err == nil {
		p = u.Path
	}
	p, _, _ = strings.Cut(p, "?")
	return r.method + " " + p
}

// repeatable reports whether the hub answers r the same however often it
// gets it.
func (r request) repeatable() bool { return r.idempotent || r.method == http.MethodGet }

// mayRetry reports whether r may be sent again after the error answer p:
// any request after an answer that says the hub did not act on it (429;
// the hub's own unavailable problem, which it answers only before acting;
// a 503 with Retry-After), and a repeatable one after any 502, 503 or 504.
func (r request) mayRetry(p *Problem) bool {
	switch p.StatusCode() {
	case http.StatusTooManyRequests:
		return true
	case http.StatusServiceUnavailable:
		return r.repeatable() || p.Type == protocol.ProblemUnavailable.URI || p.hasRetryAfter
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return r.repeatable()
	}
	return false
}

// mayResend reports whether r may be sent again after it failed with err,
// without an answer: a repeatable request always, any other only if no
// connection to the hub could be made, so that the hub never got it.
func (r request) mayResend(err error) bool {
	var op *net.OpError
	return r.repeatable() || (errors.As(err, &op) && op.Op == "dial")
}

// maxAnswerSize bounds the JSON answers the client reads whole; feed pages
// of a thousand records are well under it. Snapshots are streamed.
const maxAnswerSize = 64 << 20

// fetch sends r and returns a successful answer's body.
func (c *Client) fetch(ctx context.Context, r request) ([]byte, error) {
	resp, err := c.send(ctx, r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: reading the answer: %w", r.op(), err)
	}
	if len(body) > maxAnswerSize {
		return nil, fmt.Errorf("%s: the answer is over %d bytes", r.op(), maxAnswerSize)
	}
	return body, nil
}

// call sends r and decodes a successful JSON answer into out, or discards
// it if out is nil.
func (c *Client) call(ctx context.Context, r request, out any) error {
	body, err := c.fetch(ctx, r)
	if err != nil || out == nil {
		return err
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s: the answer is not the JSON expected: %w", r.op(), err)
	}
	return nil
}

// send sends r, retrying as the Retry policy and r allow, and returns a
// 2xx answer, whose body the caller closes, or an error: a [*Problem] for
// an error answer.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	policy := c.cfg.Retry
	reminted := false
	// at is the index of the URL to send to; tried counts the URLs tried
	// in this round, round the rounds.
	at, tried, round := 0, 0, 1
	for attempt := 1; ; attempt++ {
		var bearer string
		if !r.anonymous {
			// Not retried: reading the configuration it needs has been
			// retried already, and minting it again would not help.
			tok, err := c.bearerToken(ctx)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", r.op(), err)
			}
			bearer = tok
		}
		if attempt == 1 {
			// After the bearer token, whose configuration may have been
			// read from another URL.
			at = int(c.cur.Load())
		}
		resp, err := c.once(ctx, r, at, bearer)
		tried++
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return nil, fmt.Errorf("%s: %w", r.op(), ctx.Err())
			case policy.AnsweredOnly && attempt > 1:
				return nil, fmt.Errorf("%s: %w (after %d attempts)", r.op(), err, attempt)
			case policy.AnsweredOnly:
				return nil, fmt.Errorf("%s: %w", r.op(), err)
			case !r.mayResend(err):
				return nil, fmt.Errorf("%s: %w (not sent again: the hub may have acted on it)", r.op(), err)
			case attempt >= policy.Attempts && attempt > 1:
				return nil, fmt.Errorf("%s: %w (after %d attempts)", r.op(), err, attempt)
			case attempt >= policy.Attempts:
				return nil, fmt.Errorf("%s: %w", r.op(), err)
			}
			if at, tried, round = c.next(at, tried, round); tried > 0 {
				c.log.Warn("sending a request to another of the hub's URLs", "op", r.op(), "attempt", attempt+1, "cause", err.Error())
				continue
			}
			if err := c.wait(ctx, r, round-1, 0, false, err); err != nil {
				return nil, err
			}
			continue
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			c.cur.Store(int32(at))
			return resp, nil
		}
		p := readProblem(r.op(), resp)
		p.Attempts = attempt
		switch {
		case p.Slug() == "bearer-expired" && !reminted && !r.anonymous:
			// The hub's clock is ahead of ours and it refused the token
			// before acting: mint a new one and send again at once.
			reminted = true
			c.forgetBearer()
			attempt--
			continue
		case !r.mayRetry(p) || attempt >= policy.Attempts:
			return nil, p
		case p.RetryAfter > policy.MaxWait && (len(c.bases) == 1 || !failover(p.StatusCode())):
			return nil, p
		}
		if failover(p.StatusCode()) {
			if at, tried, round = c.next(at, tried, round); tried > 0 {
				c.log.Warn("sending a request to another of the hub's URLs", "op", r.op(), "attempt", attempt+1, "cause", p.Error())
				continue
			}
		} else {
			// Answered by a node that works, the hub's answer holds for
			// every node: retry there.
			c.cur.Store(int32(at))
			tried, round = 0, round+1
		}
		after := min(p.RetryAfter, policy.MaxWait)
		if err := c.wait(ctx, r, round-1, after, p.toldWhen, p); err != nil {
			return nil, err
		}
	}
}

// failover reports whether an answer with status says that the node that
// sent it cannot serve the request now, so that another may.
func failover(status int) bool {
	return status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
}

// next returns the URL to send to after the one at failed, with the count
// of URLs tried in this round and the round: the next URL, or, when every
// URL was tried in this round, the same order again in a new round, with
// tried 0 (the caller waits before a new round).
func (c *Client) next(at, tried, round int) (int, int, int) {
	at = (at + 1) % len(c.bases)
	if tried < len(c.bases) {
		return at, tried, round
	}
	return at, 0, round + 1
}

// once sends r one time to the hub's URL at, with the bearer token if one
// is given. With Retry.AttemptTimeout, it gives up on an answer that has
// not begun by then with an [*AttemptTimeoutError].
func (c *Client) once(ctx context.Context, r request, at int, bearer string) (*http.Response, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	target := r.url
	if target == "" {
		target = c.bases[at] + r.path
	}
	limit := c.cfg.Retry.AttemptTimeout
	var timer *time.Timer
	var timedOut atomic.Bool
	if limit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		timer = time.AfterFunc(limit, func() { timedOut.Store(true); cancel() })
		defer func() {
			// Cancelling is left to the body's Close once an answer has
			// begun.
			if timer != nil {
				timer.Stop()
				cancel()
			}
		}()
		resp, err := c.do(ctx, r, target, body, bearer)
		if !timer.Stop() || timedOut.Load() {
			if err == nil {
				resp.Body.Close()
			}
			return nil, &AttemptTimeoutError{Op: r.op(), After: limit}
		}
		if err != nil {
			return nil, err
		}
		resp.Body = cancelOnClose{resp.Body, cancel}
		timer = nil
		return resp, nil
	}
	return c.do(ctx, r, target, body, bearer)
}

// An AttemptTimeoutError is the error of an attempt the hub did not begin
// to answer within Retry.AttemptTimeout; the hub may have acted on it.
type AttemptTimeoutError struct {
	Op    string
	After time.Duration
}

func (e *AttemptTimeoutError) Error() string {
	return fmt.Sprintf("no answer within %s", e.After)
}

// Timeout makes the error a net.Error that timed out.
func (e *AttemptTimeoutError) Timeout() bool { return true }

// cancelOnClose cancels an attempt's context when its answer is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// do makes and sends the HTTP request of r to target.
func (c *Client) do(ctx context.Context, r request, target string, body io.Reader, bearer string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		return nil, err
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if !r.raw {
		req.Header.Set("Accept", cmp.Or(r.accept, "application/json")+", "+protocol.ProblemContentType)
	}
	req.Header.Set("User-Agent", "sparr-client/1")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return c.http.Do(req)
}

func (c *Client) forgetBearer() {
	c.bearerMu.Lock()
	c.bearer = ""
	c.bearerMu.Unlock()
}

// wait sleeps before retry attempt+1: after, if the hub told it (a
// Retry-After of 0 retries at once), otherwise the backoff for the attempt
// with ±20 % jitter.
func (c *Client) wait(ctx context.Context, r request, attempt int, after time.Duration, told bool, cause error) error {
	policy := c.cfg.Retry
	d := after
	if !told {
		d = policy.Backoff << (attempt - 1)
		if d <= 0 || d > policy.MaxWait {
			d = policy.MaxWait
		}
		d = time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	}
	c.log.Warn("retrying a request to the hub", "op", r.op(), "attempt", attempt+1, "wait", d.String(), "cause", cause.Error())
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%s: %w (while waiting to retry after: %v)", r.op(), ctx.Err(), cause)
	case <-t.C:
		return nil
	}
}
