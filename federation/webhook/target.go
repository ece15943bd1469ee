package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrTargetRefused is returned, wrapped in a [*TargetError], by
// [TargetPolicy.CheckURL] for a webhook URL the hub must not deliver to and
// by [TargetPolicy.CheckAddr] for an address it must not connect to. A
// connection refused by [TargetPolicy.DialControl] fails with an error that
// wraps it too, however deep in the HTTP client's errors.
var ErrTargetRefused = errors.New("webhook target refused")

// A TargetError is a refusal by a [TargetPolicy]: the evidence of which URL
// host and which address were refused, and why. It wraps
// [ErrTargetRefused], and the resolver's error if the host could not be
// looked up.
type TargetError struct {
	// Host is the host of the URL being checked, a name or an IP literal;
	// "" if the URL did not parse or had none, and for refusals by
	// [TargetPolicy.CheckAddr] and [TargetPolicy.DialControl].
	Host string
	// Addr is the refused address; the zero Addr if the refusal is not
	// about an address (a wrong scheme, a failed lookup).
	Addr netip.Addr
	// Reason says what was wrong and what to do about it.
	Reason string
	// Err is the resolver's error if the host could not be looked up.
	Err error
}

// Error returns "webhook target refused: " and the reason.
func (e *TargetError) Error() string { return ErrTargetRefused.Error() + ": " + e.Reason }

// Unwrap returns [ErrTargetRefused] and, if set, Err.
func (e *TargetError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrTargetRefused, e.Err}
	}
	return []error{ErrTargetRefused}
}

// A TargetPolicy decides which webhook URLs the hub may deliver to.
//
// Members choose the URLs the hub POSTs their webhooks to. Left unchecked, a
// member could point the hub at the hub's own network (an admin port on
// loopback, a database on a private address, the cloud metadata service at
// 169.254.169.254) and have the hub send requests there on its behalf: a
// server-side request forgery. A TargetPolicy stops that in three places:
//
//   - At registration, [TargetPolicy.CheckURL] accepts only an absolute
//     https URL with a host, no user credentials and no fragment; it looks
//     the host up and refuses the URL if any address the host resolves to
//     (or the IP literal) is not a public unicast address.
//   - At every connection, the dialer of [TargetPolicy.NewTransport] runs
//     [TargetPolicy.DialControl], which checks the address actually being
//     connected to, after name resolution, with [TargetPolicy.CheckAddr].
//     This closes DNS rebinding: a name that resolved to a public address
//     at registration and resolves to a private one at delivery is refused
//     then, and a name that resolves to both is only ever connected to at
//     its public addresses.
//   - Redirects are not followed: the dispatcher's http.Client refuses them
//     in its CheckRedirect, so a member's server cannot send the hub on to
//     another URL. Were one followed, its connection would still pass
//     through DialControl.
//
// The hub fetches members' JWK Sets through the same transport, so a
// member's key set URL reaches no address a webhook URL could not; its
// refusals read as this package words them ("webhook target refused: …").
//
// These addresses are refused: unspecified (0.0.0.0, ::), "this network"
// (0.0.0.0/8), loopback (127.0.0.0/8, ::1), private (10.0.0.0/8,
// 172.16.0.0/12, 192.168.0.0/16, fc00::/7), carrier-grade NAT
// (100.64.0.0/10), link-local (169.254.0.0/16, home of cloud metadata
// services, and fe80::/10), IETF protocol assignments (192.0.0.0/24), the
// old 6to4 relay anycast (192.88.99.0/24), benchmarking (198.18.0.0/15,
// 2001:2::/48), documentation (192.0.2.0/24, 198.51.100.0/24,
// 203.0.113.0/24, 2001:db8::/32, 3fff::/20), multicast (224.0.0.0/4,
// ff00::/8), reserved (240.0.0.0/4) and broadcast (255.255.255.255),
// Teredo (2001::/32), any IPv6 address outside the global unicast range
// 2000::/3, and any address with a zone (fe80::1%eth0). IPv4-mapped IPv6
// addresses (::ffff:0:0/96), NAT64 addresses (64:ff9b::/96) and 6to4
// addresses (2002::/16) are judged by the IPv4 address they embed:
// ::ffff:127.0.0.1 is loopback.
//
// Allow lists ranges to permit although they are special, for tests and
// demos that run members on loopback or a private network: 127.0.0.0/8 for a
// demo on one machine, 172.16.0.0/12 for a container network. An
// IPv4-mapped address is allowed if its IPv4 address is. Addresses with a
// zone are refused even if allowed. A production hub allows nothing.
//
// The zero TargetPolicy is the production policy: https only, public
// addresses only, the system's resolver. A TargetPolicy is safe for
// concurrent use as long as Allow is not modified.
type TargetPolicy struct {
	// AllowHTTP permits plain http:// URLs (development and tests only).
	AllowHTTP bool
	// Allow lists address ranges that are allowed although they are
	// loopback, private, link-local or otherwise special (e.g. 127.0.0.0/8
	// for a demo).
	Allow []netip.Prefix
	// Resolver looks host names up for CheckURL; nil means
	// net.DefaultResolver. If it is a *net.Resolver, the transport from
	// NewTransport uses it too; otherwise the transport uses the system's
	// resolver, and DialControl checks whatever address that returns.
	Resolver interface {
		LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
	}
}

// The system's resolver is a TargetPolicy.Resolver.
var _ = TargetPolicy{Resolver: net.DefaultResolver}

// Limits and settings of webhook targets and deliveries.
const (
	maxTargetURLLength           = 2048
	maxTargetHostLength          = 253
	maxTargetLabelLength         = 63
	targetDialTimeout            = 5 * time.Second
	targetKeepAlive              = 30 * time.Second
	targetTLSHandshakeTimeout    = 5 * time.Second
	targetResponseHeaderTimeout  = 10 * time.Second
	targetExpectContinueTimeout  = time.Second
	targetMaxIdleConns           = 1024
	targetMaxIdleConnsPerHost    = 8
	targetIdleConnTimeout        = 90 * time.Second
	targetMaxResponseHeaderBytes = 64 << 10
)

// targetHint is what to do about a refused address.
const targetHint = "webhook URLs must be reachable on the public internet"

// CheckURL checks a webhook URL at registration and returns it parsed. The
// URL must be at most 2048 bytes, use https (or http, if AllowHTTP), have a
// host, carry no user credentials and no fragment, and have a port from 1 to
// 65535 if it has one. A host name must be a DNS name in ASCII (an
// internationalised name in its xn-- form) whose last label is not all
// digits, so that numeric forms like 2130706433 or 127.1 are not taken for
// names; it is looked up with the policy's resolver, and every address it
// resolves to must pass [TargetPolicy.CheckAddr]. An IP literal must pass
// CheckAddr itself.
//
// A refusal is a [*TargetError] wrapping [ErrTargetRefused] whose reason
// says exactly what was wrong and what to do, such as
//
//	host "hooks.bank-a.example" resolves to 10.0.0.5, a private address; webhook URLs must be reachable on the public internet
//
// A failed lookup is a refusal that wraps the resolver's error as well;
// but if ctx ends during the lookup, the error is not a refusal and wraps
// ctx's error instead.
func (p TargetPolicy) CheckURL(ctx context.Context, raw string) (*url.URL, error) {
	u, err := p.checkURLForm(raw)
	if err != nil {
		return nil, err
	}
	host := u.Hostname()
	if a, err := netip.ParseAddr(host); err == nil {
		if kind := p.refusal(a); kind != "" {
			return nil, &TargetError{Host: host, Addr: a, Reason: fmt.Sprintf("host %s is %s; %s", host, kind, targetHint)}
		}
		return u, nil
	}
	if reason := checkTargetHostName(host); reason != "" {
		return nil, &TargetError{Host: host, Reason: reason}
	}

	addrs, err := p.resolver().LookupNetIP(ctx, "ip", host)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			if errors.Is(err, cerr) {
				return nil, fmt.Errorf("check webhook URL: look up host %q: %w", host, err)
			}
			return nil, fmt.Errorf("check webhook URL: look up host %q: %w: %w", host, cerr, err)
		}
		return nil, &TargetError{Host: host, Err: err,
			Reason: fmt.Sprintf("host %q could not be looked up (%v); give a host name with a public A or AAAA record", host, err)}
	}
	if len(addrs) == 0 {
		return nil, &TargetError{Host: host,
			Reason: fmt.Sprintf("host %q resolves to no address; give a host name with a public A or AAAA record", host)}
	}
	for _, a := range addrs {
		if kind := p.refusal(a); kind != "" {
			return nil, &TargetError{Host: host, Addr: a,
				Reason: fmt.Sprintf("host %q resolves to %s, %s; %s", host, showTargetAddr(a), kind, targetHint)}
		}
	}
	return u, nil
}

// CheckAddr reports whether one IP address may be connected to: it returns
// nil if a is a public unicast address or lies in a range of Allow, and
// otherwise a [*TargetError] wrapping [ErrTargetRefused] that names the
// kind of address, such as "10.0.0.5 is a private address; …". The
// [TargetPolicy] documentation lists the refused ranges.
func (p TargetPolicy) CheckAddr(a netip.Addr) error {
	if kind := p.refusal(a); kind != "" {
		return &TargetError{Addr: a, Reason: fmt.Sprintf("%s is %s; %s", showTargetAddr(a), kind, targetHint)}
	}
	return nil
}

// DialControl returns a function for [net.Dialer].Control that refuses, at
// connect time, any address [TargetPolicy.CheckAddr] refuses. It sees the
// address after name resolution, just before the socket connects, so it
// refuses a name that has come to resolve to a private address since
// registration (DNS rebinding) and a redirect to a private address alike.
// The dial then fails with an error wrapping the [*TargetError].
func (p TargetPolicy) DialControl() func(network, address string, c syscall.RawConn) error {
	p.Allow = slices.Clone(p.Allow)
	return func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return &TargetError{Reason: fmt.Sprintf("cannot check %s address %q (%v); %s", network, address, err, targetHint)}
		}
		return p.CheckAddr(ap.Addr())
	}
}

// NewTransport returns an [*http.Transport] for delivering webhooks to
// many members' endpoints: its dialer runs [TargetPolicy.DialControl] on
// every connection; it never uses a proxy from the environment, so member
// traffic goes straight to members; and it has timeouts and keep-alives
// suited to a hub delivering to hundreds of endpoints: 5 seconds to
// connect, 5 for the TLS handshake, responseHeaderTimeout for the response
// headers (10 seconds if it is not positive), 64 KiB of response headers at
// most, up to 1024 idle connections, 8 per host, closed after 90 seconds
// idle, and HTTP/2 where the endpoint offers it.
//
// Redirects are the client's concern: the dispatcher's http.Client refuses
// them in its CheckRedirect.
func (p TargetPolicy) NewTransport(responseHeaderTimeout time.Duration) *http.Transport {
	if responseHeaderTimeout <= 0 {
		responseHeaderTimeout = targetResponseHeaderTimeout
	}
	d := &net.Dialer{
		Timeout:   targetDialTimeout,
		KeepAlive: targetKeepAlive,
		Control:   p.DialControl(),
	}
	if r, ok := p.Resolver.(*net.Resolver); ok {
		d.Resolver = r
	}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		TLSHandshakeTimeout:    targetTLSHandshakeTimeout,
		ResponseHeaderTimeout:  responseHeaderTimeout,
		ExpectContinueTimeout:  targetExpectContinueTimeout,
		MaxResponseHeaderBytes: targetMaxResponseHeaderBytes,
		MaxIdleConns:           targetMaxIdleConns,
		MaxIdleConnsPerHost:    targetMaxIdleConnsPerHost,
		IdleConnTimeout:        targetIdleConnTimeout,
		ForceAttemptHTTP2:      true,
	}
}

// checkURLForm checks everything about raw but its host's addresses.
func (p TargetPolicy) checkURLForm(raw string) (*url.URL, error) {
	var host string // once raw is parsed
	refuse := func(format string, args ...any) error {
		return &TargetError{Host: host, Reason: fmt.Sprintf(format, args...)}
	}
	const example = `"https://hooks.bank.example/sparr"`
	if raw == "" {
		return nil, refuse("no URL given; give an absolute https URL such as %s", example)
	}
	if len(raw) > maxTargetURLLength {
		return nil, refuse("the URL is %d bytes; use one of at most %d", len(raw), maxTargetURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil {
		var uerr *url.Error // repeats the URL
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, refuse("%q is not a URL (%v); give an absolute https URL such as %s", raw, err, example)
	}
	host = u.Hostname()
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && p.AllowHTTP:
	case u.Scheme == "http":
		return nil, refuse("the URL uses http, which exposes deliveries to anyone on the path; use https")
	default:
		return nil, refuse("%q is not an absolute https URL; give one such as %s", raw, example)
	}
	switch {
	case host == "":
		return nil, refuse("the URL has no host; give an absolute https URL such as %s", example)
	case u.User != nil:
		return nil, refuse("the URL carries user credentials (…@); remove them, since the hub signs every delivery")
	case strings.Contains(raw, "#"):
		return nil, refuse("the URL has a fragment (#…), which is never sent to the server; remove it")
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, refuse("the URL has port %s; give a port from 1 to 65535, or none", port)
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return nil, refuse("the URL has an empty port after %q; give a port from 1 to 65535, or remove the ':'", u.Hostname())
	}
	return u, nil
}

// checkTargetHostName returns why host is not a name the hub looks up, or
// "" if it is one.
func checkTargetHostName(host string) string {
	name := strings.TrimSuffix(host, ".")
	if len(name) > maxTargetHostLength {
		return fmt.Sprintf("the host name is %d bytes; a DNS name has at most %d", len(name), maxTargetHostLength)
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > maxTargetLabelLength {
			return fmt.Sprintf("host %q has an empty label or one longer than %d bytes; give a valid DNS name", host, maxTargetLabelLength)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Sprintf("host %q has a label %q that starts or ends with '-'; give a valid DNS name", host, l)
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return fmt.Sprintf("host %q has %q, which is not allowed in a DNS name; use letters a-z, digits and '-', "+
					"with an internationalised name in its ASCII (xn--) form", host, string(c))
			}
		}
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return fmt.Sprintf("host %q is neither a DNS name nor an IP address in standard form; give a host name, "+
			"or an IPv4 address as four decimal numbers", host)
	}
	return ""
}

// resolver returns p's resolver.
func (p TargetPolicy) resolver() interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
} {
	if p.Resolver == nil {
		return net.DefaultResolver
	}
	return p.Resolver
}

// refusal returns what kind of address a is, such as "a private address",
// if p refuses it, and "" if p allows it.
func (p TargetPolicy) refusal(a netip.Addr) string {
	kind := targetAddrKind(a)
	if kind == "" || a.Zone() == "" && p.allows(a) {
		return ""
	}
	return kind
}

// allows reports whether a lies in a range of p.Allow; an IPv4-mapped
// address lies in its IPv4 address's ranges too.
func (p TargetPolicy) allows(a netip.Addr) bool {
	for _, r := range p.Allow {
		if r.Contains(a) || a.Is4In6() && r.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// Address ranges the hub does not deliver to, with what they are; the
// addresses that embed an IPv4 address are handled by targetAddrKind.
var (
	targetBroadcast     = netip.AddrFrom4([4]byte{255, 255, 255, 255})
	targetNAT64         = netip.MustParsePrefix("64:ff9b::/96")
	target6to4          = netip.MustParsePrefix("2002::/16")
	targetTeredo        = netip.MustParsePrefix("2001::/32")
	targetGlobalUnicast = netip.MustParsePrefix("2000::/3")

	targetSpecialRanges = []struct {
		prefix netip.Prefix
		kind   string
	}{
		{netip.MustParsePrefix("0.0.0.0/8"), `a "this network" address`},
		{netip.MustParsePrefix("10.0.0.0/8"), "a private address"},
		{netip.MustParsePrefix("100.64.0.0/10"), "a carrier-grade NAT address"},
		{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address"},
		{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address"},
		{netip.MustParsePrefix("172.16.0.0/12"), "a private address"},
		{netip.MustParsePrefix("192.0.0.0/24"), "an IETF protocol assignment address"},
		{netip.MustParsePrefix("192.0.2.0/24"), "a documentation address"},
		{netip.MustParsePrefix("192.88.99.0/24"), "a 6to4 relay anycast address"},
		{netip.MustParsePrefix("192.168.0.0/16"), "a private address"},
		{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address"},
		{netip.MustParsePrefix("198.51.100.0/24"), "a documentation address"},
		{netip.MustParsePrefix("203.0.113.0/24"), "a documentation address"},
		{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
		{netip.MustParsePrefix("240.0.0.0/4"), "a reserved address"},
		{netip.MustParsePrefix("::1/128"), "a loopback address"},
		{netip.MustParsePrefix("2001:2::/48"), "a benchmarking address"},
		{netip.MustParsePrefix("2001:db8::/32"), "a documentation address"},
		{netip.MustParsePrefix("3fff::/20"), "a documentation address"},
		{netip.MustParsePrefix("fc00::/7"), "a private address"},
		{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
		{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
	}
)

// targetAddrKind returns what kind of address a is, such as "a private
// address", if it is not a public unicast address, and "" if it is one.
func targetAddrKind(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "not an IP address"
	case a.Zone() != "":
		return fmt.Sprintf("an address with a zone (%%%s)", a.Zone())
	case a.IsUnspecified():
		return "the unspecified address"
	case a == targetBroadcast:
		return "the broadcast address"
	case a.Is4In6():
		return embeddedTargetKind("an IPv4-mapped IPv6 address", a.Unmap())
	case targetNAT64.Contains(a):
		b := a.As16()
		return embeddedTargetKind("a NAT64 address", netip.AddrFrom4([4]byte(b[12:16])))
	case target6to4.Contains(a):
		b := a.As16()
		return embeddedTargetKind("a 6to4 address", netip.AddrFrom4([4]byte(b[2:6])))
	case targetTeredo.Contains(a):
		return "a Teredo address"
	}
	for _, r := range targetSpecialRanges {
		if r.prefix.Contains(a) {
			return r.kind
		}
	}
	if a.Is6() && !targetGlobalUnicast.Contains(a) {
		return "an IPv6 address outside the global unicast range 2000::/3"
	}
	return ""
}

// embeddedTargetKind describes an IPv6 address of kind what that embeds
// v4, judged by v4; "" if v4 is public.
func embeddedTargetKind(what string, v4 netip.Addr) string {
	kind := targetAddrKind(v4)
	if kind == "" {
		return ""
	}
	return fmt.Sprintf("%s for %s (%s)", what, v4, kind)
}

// showTargetAddr writes a for an error message.
func showTargetAddr(a netip.Addr) string {
	if !a.IsValid() {
		return "an empty address"
	}
	return a.String()
}
