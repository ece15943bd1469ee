package server

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
)

// Context keys the middleware sets.
const (
	keyRequestID = "sparr.request_id"
	keyRoute     = "sparr.route"
	keyMember    = "sparr.member"
)

// recover turns a panic into a 500 problem and an error log line. The line
// names the panic value's type and the functions on the stack, never the
// value itself nor the arguments on the stack: either may hold request
// data (a token, a consent).
func (h *Hub) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			h.log.ErrorContext(c.Request.Context(), "panic serving request", "request_id", c.GetString(keyRequestID), "route", routeLabel(c.FullPath()),
				"panic_type", fmt.Sprintf("%T", v), "stack", stackFrames(3))
			if !c.Writer.Written() {
				h.fail(c, hubFailed(c))
			}
			c.Abort()
		}
	}()
	c.Next()
}

// stackFrames returns the calling goroutine's stack as "function file:line"
// lines, without argument values, skipping skip frames (runtime.Callers,
// stackFrames, and the deferred function).
func stackFrames(skip int) string {
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(skip, pcs)])
	var b strings.Builder
	for {
		f, more := frames.Next()
		fmt.Fprintf(&b, "%s %s:%d\n", f.Function, f.File, f.Line)
		if !more {
			return b.String()
		}
	}
}

// observe logs each request and counts it. It logs the route pattern and
// the client address (through Config.TrustedProxies), never the body, the
// query, or the Authorization header.
func (h *Hub) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	took := time.Since(start)
	route := routeLabel(c.FullPath())
	status := c.Writer.Status()
	h.metrics.requests.WithLabelValues(route, methodLabel(c.Request.Method), strconv.Itoa(status)).Inc()
	h.metrics.latency.WithLabelValues(route).Observe(took.Seconds())
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.String("request_id", c.GetString(keyRequestID)),
		slog.String("method", c.Request.Method),
		slog.String("route", route),
		slog.String("client", c.ClientIP()),
		slog.Int("status", status),
		slog.Float64("ms", float64(took.Microseconds())/1000),
	}
	if m := member(c); m != nil {
		attrs = append(attrs, slog.String("member", m.ID))
	}
	h.log.LogAttrs(c.Request.Context(), level, "request", attrs...)
}

// routeLabels are the API's routes in OpenAPI syntax, by gin pattern.
var routeLabels = func() map[string]string {
	m := make(map[string]string)
	for _, r := range Routes() {
		m[r.Path] = r.OpenAPIPath()
	}
	return m
}()

// routeLabel is a request's route as a metric label and in logs: the
// route's path as docs/openapi.yaml writes it ("/v1/flags/{id}"), or
// "unmatched" for a request no route serves, whatever its path.
func routeLabel(pattern string) string {
	if r, ok := routeLabels[pattern]; ok {
		return r
	}
	return "unmatched"
}

// apiMethods are the methods the API's routes use.
var apiMethods = func() map[string]bool {
	m := make(map[string]bool)
	for _, r := range Routes() {
		m[r.Method] = true
	}
	return m
}()

// methodLabel is a request's method as a metric label: one of the
// methods the API uses, or "other". A client may send any token as a
// method, and a label per made-up method would grow the hub's memory and
// its /metrics without bound.
func methodLabel(method string) string {
	if apiMethods[method] {
		return method
	}
	return "other"
}

// describe records which route is being served.
func (h *Hub) describe(r Route) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Set(keyRoute, r)
		c.Next()
	}
}

func member(c *gin.Context) *api.Member {
	m, _ := c.Get(keyMember)
	mm, _ := m.(*api.Member)
	return mm
}

func route(c *gin.Context) Route {
	r, _ := c.Get(keyRoute)
	rr, _ := r.(Route)
	return rr
}

// authenticate checks the bearer token, the member's status and its roles.
func (h *Hub) authenticate(r Route) gin.HandlerFunc {
	return func(c *gin.Context) {
		// The scheme is case-insensitive (RFC 9110, section 11.1).
		scheme, token, _ := strings.Cut(c.GetHeader("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || token == "" {
			c.Header("WWW-Authenticate", `Bearer realm="sparr"`)
			h.fail(c, problemf(protocol.ProblemUnauthenticated, "send Authorization: Bearer <jwt>, a bearer token signed with your member key (see docs/protocol.md, Bearer tokens)"))
			return
		}
		now := h.now()
		id, ok := h.bearers.get(token, now)
		if !ok {
			b, err := protocol.VerifyBearer(c, token, h.members, protocol.BearerOptions{Audience: h.cfg.Issuer, Now: now, Skew: h.cfg.ClockSkew})
			var ve *protocol.VerificationError
			switch {
			case errors.As(err, &ve) && errors.Is(err, protocol.ErrExpired):
				c.Header("WWW-Authenticate", `Bearer realm="sparr", error="invalid_token"`)
				h.fail(c, problemf(protocol.ProblemBearerExpired, "%v", err))
				return
			case errors.As(err, &ve):
				c.Header("WWW-Authenticate", `Bearer realm="sparr", error="invalid_token"`)
				h.fail(c, problemf(protocol.ProblemUnauthenticated, "%v", err))
				return
			case err != nil:
				h.log.Warn("resolving a member key failed", "request_id", c.GetString(keyRequestID), "error", err)
				h.fail(c, problemf(protocol.ProblemUnavailable, "could not fetch the member's keys; try again shortly"))
				return
			}
			id = b.Member
			h.bearers.put(token, id, b.Expiry)
		}
		m, err := h.store.Member(c, id)
		if err != nil {
			c.Header("WWW-Authenticate", `Bearer realm="sparr", error="invalid_token"`)
			h.fail(c, problemf(protocol.ProblemUnauthenticated, "member %q is not registered with this hub", id))
			return
		}
		c.Set(keyMember, m)
		if !m.Active() {
			h.fail(c, problemf(protocol.ProblemMemberSuspended, "member %q is suspended; contact the hub operator", m.ID))
			return
		}
		if !slices.ContainsFunc(r.Roles, m.HasRole) {
			h.fail(c, problemf(protocol.ProblemForbidden, "%s %s needs the role %s; member %q has %s", r.Method, r.Path, roleList(r.Roles), m.ID, roleList(m.Roles)))
			return
		}
		c.Next()
	}
}

func roleList(roles []api.Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, " or ")
}

// A bearerCache remembers verified bearer tokens until they expire, so a
// member pays for one signature check per token, not per request.
type bearerCache struct {
	mu      sync.Mutex
	max     int
	entries map[string]bearerEntry
}

type bearerEntry struct {
	member string
	expiry time.Time
}

func newBearerCache(max int) *bearerCache {
	return &bearerCache{max: max, entries: make(map[string]bearerEntry)}
}

func (b *bearerCache) get(token string, now time.Time) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[token]
	if !ok || !now.Before(e.expiry) {
		return "", false
	}
	return e.member, true
}

func (b *bearerCache) put(token, member string, expiry time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.entries) >= b.max {
		now := time.Now()
		for k, e := range b.entries {
			if !now.Before(e.expiry) {
				delete(b.entries, k)
			}
		}
		if len(b.entries) >= b.max {
			clear(b.entries)
		}
	}
	b.entries[token] = bearerEntry{member: member, expiry: expiry}
}

// forget drops every cached token of a member, after it is suspended or
// its keys change.
func (b *bearerCache) forget(member string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, e := range b.entries {
		if e.member == member {
			delete(b.entries, k)
		}
	}
}

// A limiter holds one token bucket per member and rate class.
type limiter struct {
	rates   map[rateClass]Rate
	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

func newLimiter(l Limits) *limiter {
	return &limiter{
		rates:   map[rateClass]Rate{classTokens: l.Tokens, classWrites: l.Writes, classChecks: l.Checks, classReads: l.Reads},
		buckets: make(map[string]*rate.Limiter),
	}
}

// allow takes one request from the member's bucket for the class, or says
// how long until one is available.
func (l *limiter) allow(member string, class rateClass, now time.Time) (bool, time.Duration) {
	r, ok := l.rates[class]
	if !ok {
		return true, 0
	}
	key := member + "\x00" + string(class)
	l.mu.Lock()
	b, ok := l.buckets[key]
	if !ok {
		b = rate.NewLimiter(rate.Limit(r.PerSecond), r.Burst)
		l.buckets[key] = b
	}
	l.mu.Unlock()
	res := b.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// rateLimit applies the member's limit for the route's class, answering
// 429 with Retry-After when it is spent.
func (h *Hub) rateLimit(class rateClass) gin.HandlerFunc {
	return func(c *gin.Context) {
		m := member(c)
		ok, wait := h.limits.allow(m.ID, class, h.now())
		if !ok {
			secs := int(math.Ceil(wait.Seconds()))
			c.Header("Retry-After", strconv.Itoa(secs))
			h.metrics.rateLimited.WithLabelValues(string(class)).Inc()
			h.fail(c, problemf(protocol.ProblemRateLimited, "member %q is over its %s limit; retry after %d s", m.ID, class, secs))
			return
		}
		c.Next()
	}
}

// tokenRates holds one token bucket per member for the identifiers it has
// evaluated: its quota's sustained rate, in bursts of decide.TokenBurst.
// A member whose quota changes gets a new bucket.
type tokenRates struct {
	mu      sync.Mutex
	buckets map[string]*tokenBucket
}

type tokenBucket struct {
	quota api.Quotas
	lim   *rate.Limiter
}

func newTokenRates() *tokenRates { return &tokenRates{buckets: make(map[string]*tokenBucket)} }

// allow takes n tokens from m's bucket, or says how long until they are
// there.
func (t *tokenRates) allow(m *api.Member, q api.Quotas, n int, now time.Time) (bool, time.Duration) {
	t.mu.Lock()
	b, ok := t.buckets[m.ID]
	if !ok || b.quota != q {
		b = &tokenBucket{quota: q, lim: rate.NewLimiter(rate.Limit(q.TokensPerSecond), decide.TokenBurst(q))}
		t.buckets[m.ID] = b
	}
	t.mu.Unlock()
	res := b.lim.ReserveN(now, n)
	if !res.OK() {
		return false, time.Hour
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}
