package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/federation/webhook"
)

// tableResolver answers lookups from a table; a name not in it does not
// exist. A name mapped to nil resolves to no address.
type tableResolver map[string][]netip.Addr

func (r tableResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	addrs, ok := r[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return addrs, nil
}

// failResolver fails every lookup with err.
type failResolver struct{ err error }

func (r failResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return nil, r.err
}

func mustAddrs(ss ...string) []netip.Addr {
	as := make([]netip.Addr, len(ss))
	for i, s := range ss {
		as[i] = netip.MustParseAddr(s)
	}
	return as
}

func mustPrefixes(ss ...string) []netip.Prefix {
	ps := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		ps[i] = netip.MustParsePrefix(s)
	}
	return ps
}

func TestCheckAddr(t *testing.T) {
	tests := []struct {
		addr string
		want string // substring of the error; "" for allowed
	}{
		// Public.
		{addr: "8.8.8.8"},
		{addr: "1.1.1.1"},
		{addr: "2606:4700:4700::1111"},
		{addr: "2001:4860:4860::8888"},
		{addr: "11.0.0.1"},
		{addr: "172.15.255.255"},
		{addr: "172.32.0.0"},
		{addr: "100.63.255.255"},
		{addr: "100.128.0.0"},
		{addr: "192.167.255.255"},
		{addr: "192.169.0.0"},
		{addr: "198.17.255.255"},
		{addr: "198.20.0.0"},
		{addr: "223.255.255.255"},
		{addr: "::ffff:8.8.8.8"},
		{addr: "64:ff9b::808:808"},
		{addr: "2002:808:808::1"},

		{addr: "0.0.0.0", want: "0.0.0.0 is the unspecified address"},
		{addr: "::", want: ":: is the unspecified address"},
		{addr: "0.1.2.3", want: `0.1.2.3 is a "this network" address`},
		{addr: "0.255.255.255", want: `"this network" address`},
		{addr: "127.0.0.1", want: "127.0.0.1 is a loopback address; webhook URLs must be reachable on the public internet"},
		{addr: "127.255.255.254", want: "a loopback address"},
		{addr: "::1", want: "::1 is a loopback address"},
		{addr: "10.0.0.5", want: "10.0.0.5 is a private address"},
		{addr: "10.255.255.255", want: "a private address"},
		{addr: "172.16.0.1", want: "a private address"},
		{addr: "172.31.255.255", want: "a private address"},
		{addr: "192.168.1.1", want: "a private address"},
		{addr: "fc00::1", want: "fc00::1 is a private address"},
		{addr: "fd12:3456:789a::1", want: "a private address"},
		{addr: "169.254.169.254", want: "169.254.169.254 is a link-local address"},
		{addr: "169.254.0.1", want: "a link-local address"},
		{addr: "fe80::1", want: "fe80::1 is a link-local address"},
		{addr: "fe80::1%eth0", want: "fe80::1%eth0 is an address with a zone (%eth0)"},
		{addr: "2606:4700:4700::1111%eth0", want: "an address with a zone"},
		{addr: "224.0.0.1", want: "224.0.0.1 is a multicast address"},
		{addr: "239.255.255.250", want: "a multicast address"},
		{addr: "ff02::1", want: "ff02::1 is a multicast address"},
		{addr: "ff0e::1", want: "a multicast address"},
		{addr: "255.255.255.255", want: "255.255.255.255 is the broadcast address"},
		{addr: "100.64.0.1", want: "100.64.0.1 is a carrier-grade NAT address"},
		{addr: "100.127.255.254", want: "a carrier-grade NAT address"},
		{addr: "198.18.0.1", want: "198.18.0.1 is a benchmarking address"},
		{addr: "198.19.255.255", want: "a benchmarking address"},
		{addr: "2001:2::1", want: "a benchmarking address"},
		{addr: "192.0.2.1", want: "192.0.2.1 is a documentation address"},
		{addr: "198.51.100.7", want: "a documentation address"},
		{addr: "203.0.113.9", want: "a documentation address"},
		{addr: "2001:db8::1", want: "2001:db8::1 is a documentation address"},
		{addr: "3fff::1", want: "a documentation address"},
		{addr: "240.0.0.1", want: "240.0.0.1 is a reserved address"},
		{addr: "255.255.255.254", want: "a reserved address"},
		{addr: "192.0.0.8", want: "an IETF protocol assignment address"},
		{addr: "192.88.99.1", want: "a 6to4 relay anycast address"},
		{addr: "::ffff:127.0.0.1", want: "::ffff:127.0.0.1 is an IPv4-mapped IPv6 address for 127.0.0.1 (a loopback address)"},
		{addr: "::ffff:10.0.0.1", want: "(a private address)"},
		{addr: "::ffff:169.254.169.254", want: "(a link-local address)"},
		{addr: "::ffff:0.0.0.0", want: "(the unspecified address)"},
		{addr: "::ffff:255.255.255.255", want: "(the broadcast address)"},
		{addr: "64:ff9b::7f00:1", want: "64:ff9b::7f00:1 is a NAT64 address for 127.0.0.1 (a loopback address)"},
		{addr: "64:ff9b::a9fe:a9fe", want: "a NAT64 address for 169.254.169.254 (a link-local address)"},
		{addr: "2002:7f00:1::1", want: "a 6to4 address for 127.0.0.1 (a loopback address)"},
		{addr: "2002:c0a8:101::", want: "a 6to4 address for 192.168.1.1 (a private address)"},
		{addr: "2001:0:4136:e378:8000:63bf:3fff:fdd2", want: "a Teredo address"},
		{addr: "::7f00:1", want: "outside the global unicast range 2000::/3"},
		{addr: "64:ff9b:1::a00:1", want: "outside the global unicast range 2000::/3"},
		{addr: "100::1", want: "outside the global unicast range 2000::/3"},
		{addr: "fec0::1", want: "outside the global unicast range 2000::/3"},
	}
	var p webhook.TargetPolicy
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			a := netip.MustParseAddr(tt.addr)
			checkTargetRefusal(t, p.CheckAddr(a), tt.want, a)
		})
	}
	t.Run("zero Addr", func(t *testing.T) {
		checkTargetRefusal(t, p.CheckAddr(netip.Addr{}), "not an IP address", netip.Addr{})
	})
}

// checkRefusal checks that err is nil if want is "", and otherwise a
// *TargetError wrapping ErrTargetRefused for addr whose message has want.
func checkTargetRefusal(t *testing.T, err error, want string, addr netip.Addr) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Errorf("got %v, want no error", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("got no error, want one saying %q", want)
	}
	if !errors.Is(err, webhook.ErrTargetRefused) {
		t.Errorf("got %v, want an error wrapping ErrTargetRefused", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("got %q, want it to contain %q", err, want)
	}
	var terr *webhook.TargetError
	if !errors.As(err, &terr) {
		t.Fatalf("got %T, want a *TargetError", err)
	}
	if terr.Addr != addr {
		t.Errorf("got Addr %v, want %v", terr.Addr, addr)
	}
}

func TestCheckAddrAllow(t *testing.T) {
	p := webhook.TargetPolicy{Allow: mustPrefixes("127.0.0.0/8", "10.0.0.0/8", "fd00::/8", "fe80::/10", "169.254.169.254/32")}
	tests := []struct {
		addr string
		want string
	}{
		{addr: "127.0.0.1"},
		{addr: "127.1.2.3"},
		{addr: "::ffff:127.0.0.1"},
		{addr: "10.1.2.3"},
		{addr: "fd00::1"},
		{addr: "fe80::1"},
		{addr: "169.254.169.254"},
		{addr: "8.8.8.8"},
		{addr: "::1", want: "a loopback address"},
		{addr: "192.168.1.1", want: "a private address"},
		{addr: "fc00::1", want: "a private address"},
		{addr: "169.254.169.253", want: "a link-local address"},
		{addr: "64:ff9b::7f00:1", want: "a NAT64 address"},
		{addr: "fe80::1%eth0", want: "an address with a zone"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			a := netip.MustParseAddr(tt.addr)
			checkTargetRefusal(t, p.CheckAddr(a), tt.want, a)
		})
	}

	t.Run("everything", func(t *testing.T) {
		p := webhook.TargetPolicy{Allow: mustPrefixes("0.0.0.0/0", "::/0")}
		for _, s := range []string{"127.0.0.1", "169.254.169.254", "::1", "255.255.255.255", "::ffff:10.0.0.1"} {
			if err := p.CheckAddr(netip.MustParseAddr(s)); err != nil {
				t.Errorf("CheckAddr(%s): got %v, want no error", s, err)
			}
		}
	})
}

func TestCheckURL(t *testing.T) {
	resolver := tableResolver{
		"hooks.bank-a.example":  mustAddrs("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"),
		"hooks.bank-a.example.": mustAddrs("93.184.215.14"),
		"HOOKS.Bank-A.example":  mustAddrs("93.184.215.14"),
		"mapped.bank-a.example": mustAddrs("::ffff:93.184.215.14"),
		"mixed.bank-a.example":  mustAddrs("93.184.215.14", "10.0.0.5"),
		"meta.bank-a.example":   mustAddrs("169.254.169.254"),
		"local.bank-a.example":  mustAddrs("::ffff:127.0.0.1"),
		"empty.bank-a.example":  nil,
		"localhost":             mustAddrs("127.0.0.1", "::1"),
		"bank-a":                mustAddrs("172.18.0.4"),
		"0x7f000001":            mustAddrs("127.0.0.1"),
	}
	long := "https://hooks.bank-a.example/"
	long += strings.Repeat("a", 2048-len(long))

	tests := []struct {
		name   string
		policy webhook.TargetPolicy
		raw    string
		want   string // substring of the error; "" for none
		addr   string // the refused address, if any
	}{
		{name: "name", raw: "https://hooks.bank-a.example/sparr"},
		{name: "name with port, query and path", raw: "https://hooks.bank-a.example:8443/sparr/v1?member=bank-a"},
		{name: "absolute name", raw: "https://hooks.bank-a.example./sparr"},
		{name: "upper-case name and scheme", raw: "HTTPS://HOOKS.Bank-A.example/"},
		{name: "name resolving to IPv4-mapped public", raw: "https://mapped.bank-a.example/"},
		{name: "IPv4 literal", raw: "https://8.8.8.8/hook"},
		{name: "IPv6 literal", raw: "https://[2606:4700:4700::1111]/hook"},
		{name: "IPv6 literal with port", raw: "https://[2606:4700:4700::1111]:8443/hook"},
		{name: "2048 bytes", raw: long},
		{name: "port 1", raw: "https://hooks.bank-a.example:1/"},
		{name: "port 65535", raw: "https://hooks.bank-a.example:65535/"},

		{name: "empty", raw: "", want: "no URL given"},
		{name: "2049 bytes", raw: long + "a", want: "the URL is 2049 bytes; use one of at most 2048"},
		{name: "not a URL", raw: "https://hooks bank-a.example/", want: "is not a URL"},
		{name: "http", raw: "http://hooks.bank-a.example/", want: "uses http"},
		{name: "http allowed", policy: webhook.TargetPolicy{AllowHTTP: true}, raw: "http://hooks.bank-a.example/"},
		{name: "ftp", raw: "ftp://hooks.bank-a.example/", want: "is not an absolute https URL"},
		{name: "ftp, http allowed", policy: webhook.TargetPolicy{AllowHTTP: true}, raw: "ftp://hooks.bank-a.example/", want: "is not an absolute https URL"},
		{name: "no scheme", raw: "hooks.bank-a.example/sparr", want: "is not an absolute https URL"},
		{name: "scheme-relative", raw: "//hooks.bank-a.example/sparr", want: "is not an absolute https URL"},
		{name: "opaque", raw: "https:hooks.bank-a.example", want: "has no host"},
		{name: "no host", raw: "https:///sparr", want: "has no host"},
		{name: "port but no host", raw: "https://:443/sparr", want: "has no host"},
		{name: "userinfo", raw: "https://bank:secret@hooks.bank-a.example/", want: "carries user credentials"},
		{name: "empty userinfo", raw: "https://@hooks.bank-a.example/", want: "carries user credentials"},
		{name: "userinfo hiding loopback", raw: "https://hooks.bank-a.example@127.0.0.1/", want: "carries user credentials"},
		{name: "fragment", raw: "https://hooks.bank-a.example/#top", want: "has a fragment"},
		{name: "empty fragment", raw: "https://hooks.bank-a.example/#", want: "has a fragment"},
		{name: "port 0", raw: "https://hooks.bank-a.example:0/", want: "has port 0; give a port from 1 to 65535"},
		{name: "port 65536", raw: "https://hooks.bank-a.example:65536/", want: "has port 65536"},
		{name: "port too long", raw: "https://hooks.bank-a.example:99999999999999999999999/", want: "give a port from 1 to 65535"},
		{name: "empty port", raw: "https://hooks.bank-a.example:/", want: "has an empty port"},
		{name: "non-numeric port", raw: "https://hooks.bank-a.example:https/", want: "is not a URL"},

		{name: "loopback literal", raw: "https://127.0.0.1/hook", want: "host 127.0.0.1 is a loopback address; webhook URLs must be reachable on the public internet", addr: "127.0.0.1"},
		{name: "loopback literal with port", raw: "https://127.0.0.1:8443/hook", want: "a loopback address", addr: "127.0.0.1"},
		{name: "private literal", raw: "https://10.0.0.5/", want: "host 10.0.0.5 is a private address", addr: "10.0.0.5"},
		{name: "metadata literal", raw: "http://169.254.169.254/latest/meta-data/", policy: webhook.TargetPolicy{AllowHTTP: true}, want: "a link-local address", addr: "169.254.169.254"},
		{name: "unspecified literal", raw: "https://0.0.0.0/", want: "the unspecified address", addr: "0.0.0.0"},
		{name: "IPv6 loopback literal", raw: "https://[::1]/", want: "host ::1 is a loopback address", addr: "::1"},
		{name: "IPv6 loopback literal with port", raw: "https://[::1]:8443/", want: "a loopback address", addr: "::1"},
		{name: "IPv4-mapped literal", raw: "https://[::ffff:127.0.0.1]/", want: "an IPv4-mapped IPv6 address for 127.0.0.1 (a loopback address)", addr: "::ffff:127.0.0.1"},
		{name: "IPv4-mapped hex literal", raw: "https://[::ffff:7f00:1]/", want: "(a loopback address)", addr: "::ffff:127.0.0.1"},
		{name: "NAT64 literal", raw: "https://[64:ff9b::a9fe:a9fe]/", want: "a NAT64 address for 169.254.169.254", addr: "64:ff9b::a9fe:a9fe"},
		{name: "zoned literal", raw: "https://[fe80::1%25eth0]/", want: "an address with a zone", addr: "fe80::1%eth0"},
		{name: "zoned literal, allowed", policy: webhook.TargetPolicy{Allow: mustPrefixes("fe80::/10")}, raw: "https://[fe80::1%25eth0]/", want: "an address with a zone", addr: "fe80::1%eth0"},
		{name: "percent-encoded host", raw: "https://%31%32%37.0.0.1/", want: "is not a URL"},
		{name: "unbracketed IPv6", raw: "https://::1/", want: "is not a URL"},
		{name: "bracketed IPv4", raw: "https://[127.0.0.1]/", want: "is not a URL"},
		{name: "decimal IPv4", raw: "https://2130706433/", want: "neither a DNS name nor an IP address in standard form"},
		{name: "short IPv4", raw: "https://127.1/", want: "neither a DNS name nor an IP address in standard form"},
		{name: "octal IPv4", raw: "https://0177.0.0.1/", want: "neither a DNS name nor an IP address in standard form"},
		{name: "hex IPv4", raw: "https://0x7f.0.0.1/", want: "neither a DNS name nor an IP address in standard form"},
		{name: "hex IPv4 as one label", raw: "https://0x7f000001/", want: "resolves to 127.0.0.1, a loopback address", addr: "127.0.0.1"},
		{name: "underscore", raw: "https://hooks_a.bank-a.example/", want: `has "_", which is not allowed`},
		{name: "hyphen first", raw: "https://-hooks.bank-a.example/", want: "starts or ends with '-'"},
		{name: "empty label", raw: "https://hooks..bank-a.example/", want: "has an empty label"},
		{name: "long label", raw: "https://" + strings.Repeat("a", 64) + ".example/", want: "longer than 63 bytes"},
		{name: "long name", raw: "https://" + strings.Repeat("abcdefghi.", 26) + "example/", want: "a DNS name has at most 253"},
		{name: "non-ASCII name", raw: "https://bänk.example/", want: "ASCII (xn--) form"},

		{name: "name resolving to private", raw: "https://mixed.bank-a.example/",
			want: `host "mixed.bank-a.example" resolves to 10.0.0.5, a private address; webhook URLs must be reachable on the public internet`, addr: "10.0.0.5"},
		{name: "name resolving to metadata", raw: "https://meta.bank-a.example/", want: "resolves to 169.254.169.254, a link-local address", addr: "169.254.169.254"},
		{name: "name resolving to IPv4-mapped loopback", raw: "https://local.bank-a.example/", want: "resolves to ::ffff:127.0.0.1, an IPv4-mapped IPv6 address for 127.0.0.1 (a loopback address)", addr: "::ffff:127.0.0.1"},
		{name: "localhost", raw: "https://localhost/", want: "resolves to 127.0.0.1, a loopback address", addr: "127.0.0.1"},
		{name: "name resolving to nothing", raw: "https://empty.bank-a.example/", want: `host "empty.bank-a.example" resolves to no address`},
		{name: "unknown name", raw: "https://nxdomain.bank-a.example/", want: `host "nxdomain.bank-a.example" could not be looked up (lookup nxdomain.bank-a.example: no such host)`},

		{name: "loopback allowed", policy: webhook.TargetPolicy{AllowHTTP: true, Allow: mustPrefixes("127.0.0.0/8")}, raw: "http://127.0.0.1:8080/hook"},
		{name: "IPv4-mapped loopback allowed", policy: webhook.TargetPolicy{Allow: mustPrefixes("127.0.0.0/8")}, raw: "https://local.bank-a.example/"},
		{name: "container network allowed", policy: webhook.TargetPolicy{AllowHTTP: true, Allow: mustPrefixes("172.16.0.0/12")}, raw: "http://bank-a:8080/hook"},
		{name: "container network not allowed", policy: webhook.TargetPolicy{AllowHTTP: true}, raw: "http://bank-a:8080/hook", want: "resolves to 172.18.0.4, a private address", addr: "172.18.0.4"},
		{name: "part of a mixed name allowed", policy: webhook.TargetPolicy{Allow: mustPrefixes("10.0.0.5/32")}, raw: "https://mixed.bank-a.example/"},
		{name: "localhost, IPv4 allowed only", policy: webhook.TargetPolicy{Allow: mustPrefixes("127.0.0.0/8")}, raw: "https://localhost/", want: "resolves to ::1, a loopback address", addr: "::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.policy
			p.Resolver = resolver
			u, err := p.CheckURL(context.Background(), tt.raw)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				want, err := url.Parse(tt.raw)
				if err != nil {
					t.Fatal(err)
				}
				if u.String() != want.String() {
					t.Errorf("got URL %s, want %s", u, want)
				}
				return
			}
			if u != nil {
				t.Errorf("got URL %s, want none", u)
			}
			var addr netip.Addr
			if tt.addr != "" {
				addr = netip.MustParseAddr(tt.addr)
			}
			checkTargetRefusal(t, err, tt.want, addr)
		})
	}
}

func TestCheckURLResolverErrors(t *testing.T) {
	t.Run("not found", func(t *testing.T) {
		p := webhook.TargetPolicy{Resolver: tableResolver{}}
		_, err := p.CheckURL(context.Background(), "https://nxdomain.bank-a.example/")
		if !errors.Is(err, webhook.ErrTargetRefused) {
			t.Errorf("got %v, want an error wrapping ErrTargetRefused", err)
		}
		var dnsErr *net.DNSError
		if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
			t.Errorf("got %v, want it to wrap the resolver's *net.DNSError", err)
		}
		var terr *webhook.TargetError
		if !errors.As(err, &terr) || terr.Host != "nxdomain.bank-a.example" {
			t.Errorf("got %#v, want a *TargetError for host nxdomain.bank-a.example", terr)
		}
	})
	t.Run("server failure", func(t *testing.T) {
		cause := &net.DNSError{Err: "server misbehaving", Name: "hooks.bank-a.example", IsTemporary: true}
		p := webhook.TargetPolicy{Resolver: failResolver{cause}}
		_, err := p.CheckURL(context.Background(), "https://hooks.bank-a.example/")
		if !errors.Is(err, webhook.ErrTargetRefused) || !errors.Is(err, cause) {
			t.Errorf("got %v, want an error wrapping ErrTargetRefused and %v", err, cause)
		}
		if want := "server misbehaving"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want it to contain %q", err, want)
		}
	})
	t.Run("context cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		p := webhook.TargetPolicy{Resolver: tableResolver{"hooks.bank-a.example": mustAddrs("93.184.215.14")}}
		_, err := p.CheckURL(ctx, "https://hooks.bank-a.example/")
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want an error wrapping context.Canceled", err)
		}
		if errors.Is(err, webhook.ErrTargetRefused) {
			t.Errorf("got %v, want an error that is not a refusal", err)
		}
	})
	t.Run("context ended, resolver error unrelated", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		cause := errors.New("resolver gave up")
		p := webhook.TargetPolicy{Resolver: failResolver{cause}}
		_, err := p.CheckURL(ctx, "https://hooks.bank-a.example/")
		if !errors.Is(err, context.Canceled) || !errors.Is(err, cause) {
			t.Errorf("got %v, want an error wrapping context.Canceled and %v", err, cause)
		}
		if errors.Is(err, webhook.ErrTargetRefused) {
			t.Errorf("got %v, want an error that is not a refusal", err)
		}
	})
	t.Run("IP literal is not looked up", func(t *testing.T) {
		p := webhook.TargetPolicy{Resolver: failResolver{errors.New("looked up")}}
		if _, err := p.CheckURL(context.Background(), "https://8.8.8.8/"); err != nil {
			t.Errorf("got %v, want no error", err)
		}
	})
}

func TestDialControl(t *testing.T) {
	tests := []struct {
		network, address string
		allow            []netip.Prefix
		want             string
	}{
		{network: "tcp4", address: "8.8.8.8:443"},
		{network: "tcp6", address: "[2606:4700:4700::1111]:443"},
		{network: "tcp4", address: "127.0.0.1:8080", want: "127.0.0.1 is a loopback address"},
		{network: "tcp4", address: "127.0.0.1:8080", allow: mustPrefixes("127.0.0.0/8")},
		{network: "tcp4", address: "169.254.169.254:80", want: "a link-local address"},
		{network: "tcp6", address: "[::ffff:10.0.0.1]:443", want: "(a private address)"},
		{network: "tcp6", address: "[fe80::1%eth0]:443", allow: mustPrefixes("fe80::/10"), want: "an address with a zone"},
		{network: "unix", address: "/run/sparr.sock", want: `cannot check unix address "/run/sparr.sock"`},
	}
	for _, tt := range tests {
		t.Run(tt.network+" "+tt.address, func(t *testing.T) {
			control := webhook.TargetPolicy{Allow: tt.allow}.DialControl()
			err := control(tt.network, tt.address, nil)
			var addr netip.Addr
			if ap, err := netip.ParseAddrPort(tt.address); err == nil {
				addr = ap.Addr()
			}
			checkTargetRefusal(t, err, tt.want, addr)
		})
	}
}

// newHookServer starts a webhook endpoint on loopback and returns it with
// a count of the requests it has had.
func newHookServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "delivered")
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// post delivers a webhook through client and returns the answer's body.
func postHook(client *http.Client, target string) (string, error) {
	resp, err := client.Post(target, "application/json", strings.NewReader(`{"type":"flag.placed"}`))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

func TestTransportRefusesLoopback(t *testing.T) {
	srv, hits := newHookServer(t)
	serverAddr := netip.MustParseAddrPort(srv.Listener.Addr().String()).Addr()

	t.Run("not allowed", func(t *testing.T) {
		tr := webhook.TargetPolicy{AllowHTTP: true}.NewTransport(time.Second)
		defer tr.CloseIdleConnections()
		_, err := postHook(&http.Client{Transport: tr}, srv.URL)
		if !errors.Is(err, webhook.ErrTargetRefused) {
			t.Fatalf("got %v, want an error wrapping ErrTargetRefused", err)
		}
		var terr *webhook.TargetError
		if !errors.As(err, &terr) || terr.Addr != serverAddr {
			t.Errorf("got %v, want a *TargetError for %v", err, serverAddr)
		}
		if n := hits.Load(); n != 0 {
			t.Errorf("got %d requests at the server, want 0", n)
		}
	})

	t.Run("allowed", func(t *testing.T) {
		tr := webhook.TargetPolicy{AllowHTTP: true, Allow: mustPrefixes("127.0.0.0/8", "::1/128")}.NewTransport(time.Second)
		defer tr.CloseIdleConnections()
		body, err := postHook(&http.Client{Transport: tr}, srv.URL)
		if err != nil {
			t.Fatalf("got %v, want no error", err)
		}
		if body != "delivered" {
			t.Errorf("got body %q, want %q", body, "delivered")
		}
		if n := hits.Load(); n != 1 {
			t.Errorf("got %d requests at the server, want 1", n)
		}
	})
}

// TestTransportRefusesRebinding registers a name while it resolves to a
// public address, then delivers to it once it resolves to loopback.
func TestTransportRefusesRebinding(t *testing.T) {
	srv, hits := newHookServer(t)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	const host = "hooks.bank-a.example"
	p := webhook.TargetPolicy{
		AllowHTTP: true,
		Resolver:  tableResolver{host: mustAddrs("93.184.215.14")},
	}
	u, err := p.CheckURL(context.Background(), "http://"+net.JoinHostPort(host, port)+"/sparr")
	if err != nil {
		t.Fatalf("registration: got %v, want no error", err)
	}

	tr := p.NewTransport(time.Second)
	defer tr.CloseIdleConnections()
	// By delivery time the name has come to resolve to the loopback
	// address the server listens on.
	dial := tr.DialContext
	var dialled atomic.Int64
	tr.DialContext = func(ctx context.Context, network, address string) (net.Conn, error) {
		if h, p, err := net.SplitHostPort(address); err == nil && h == host {
			dialled.Add(1)
			address = net.JoinHostPort(srv.Listener.Addr().(*net.TCPAddr).IP.String(), p)
		}
		return dial(ctx, network, address)
	}

	_, err = postHook(&http.Client{Transport: tr}, u.String())
	if !errors.Is(err, webhook.ErrTargetRefused) {
		t.Fatalf("delivery: got %v, want an error wrapping ErrTargetRefused", err)
	}
	if n := dialled.Load(); n == 0 {
		t.Errorf("got %d dials of %s, want at least 1", n, host)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("got %d requests at the server, want 0", n)
	}

	// The server's own URL, the rebound address itself, is refused too.
	if _, err := postHook(&http.Client{Transport: tr}, srv.URL); !errors.Is(err, webhook.ErrTargetRefused) {
		t.Errorf("delivery to %s: got %v, want an error wrapping ErrTargetRefused", srv.URL, err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("got %d requests at the server, want 0", n)
	}
}

func TestNewTransport(t *testing.T) {
	tests := []struct {
		responseHeaderTimeout time.Duration
		want                  time.Duration
	}{
		{responseHeaderTimeout: 3 * time.Second, want: 3 * time.Second},
		{responseHeaderTimeout: 0, want: 10 * time.Second},
		{responseHeaderTimeout: -time.Second, want: 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.responseHeaderTimeout.String(), func(t *testing.T) {
			tr := webhook.TargetPolicy{}.NewTransport(tt.responseHeaderTimeout)
			if tr.Proxy != nil {
				t.Error("got a Proxy, want none")
			}
			if tr.DialContext == nil {
				t.Error("got no DialContext, want the policy's dialer")
			}
			for _, f := range []struct {
				name      string
				got, want any
			}{
				{"ResponseHeaderTimeout", tr.ResponseHeaderTimeout, tt.want},
				{"TLSHandshakeTimeout", tr.TLSHandshakeTimeout, 5 * time.Second},
				{"MaxIdleConns", tr.MaxIdleConns, 1024},
				{"MaxIdleConnsPerHost", tr.MaxIdleConnsPerHost, 8},
				{"IdleConnTimeout", tr.IdleConnTimeout, 90 * time.Second},
				{"ForceAttemptHTTP2", tr.ForceAttemptHTTP2, true},
				{"DisableKeepAlives", tr.DisableKeepAlives, false},
			} {
				if f.got != f.want {
					t.Errorf("%s: got %v, want %v", f.name, f.got, f.want)
				}
			}
		})
	}
}

// FuzzCheckURL checks that CheckURL never panics and accepts only URLs
// with an allowed scheme, a host and nothing that would take the hub
// somewhere other than a public address.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://hooks.bank-a.example/sparr",
		"https://hooks.bank-a.example:8443/sparr?x=1",
		"http://hooks.bank-a.example/",
		"https://8.8.8.8/",
		"https://[2606:4700:4700::1111]:443/",
		"https://127.0.0.1/",
		"https://[::ffff:127.0.0.1]/",
		"https://[fe80::1%25eth0]/",
		"https://user:pass@hooks.bank-a.example/",
		"https://hooks.bank-a.example/#frag",
		"https://hooks.bank-a.example:0/",
		"https://hooks.bank-a.example:/",
		"https://2130706433/",
		"https://%31%32%37.0.0.1/",
		"https:opaque",
		"//hooks.bank-a.example/",
		"https://bänk.example/",
		"https://hooks.bank-a.example\\@127.0.0.1/",
	} {
		f.Add(s, false)
	}
	// Every name resolves to a public address, so refusals come from the
	// URL's form or an IP literal.
	resolver := lookupFunc(func(context.Context, string, string) ([]netip.Addr, error) {
		return mustAddrs("93.184.215.14"), nil
	})
	f.Fuzz(func(t *testing.T, raw string, allowHTTP bool) {
		p := webhook.TargetPolicy{AllowHTTP: allowHTTP, Resolver: resolver}
		u, err := p.CheckURL(context.Background(), raw)
		if err != nil {
			if u != nil {
				t.Errorf("got URL %s with error %v, want no URL", u, err)
			}
			if !errors.Is(err, webhook.ErrTargetRefused) {
				t.Errorf("got %v, want an error wrapping ErrTargetRefused", err)
			}
			return
		}
		switch {
		case u.Scheme == "https":
		case u.Scheme == "http" && allowHTTP:
		default:
			t.Errorf("CheckURL(%q): accepted scheme %q", raw, u.Scheme)
		}
		if u.Hostname() == "" {
			t.Errorf("CheckURL(%q): accepted a URL without a host", raw)
		}
		if u.User != nil {
			t.Errorf("CheckURL(%q): accepted user credentials", raw)
		}
		if u.Fragment != "" || strings.Contains(raw, "#") {
			t.Errorf("CheckURL(%q): accepted a fragment", raw)
		}
		if len(raw) > 2048 {
			t.Errorf("CheckURL(%q): accepted %d bytes", raw, len(raw))
		}
		if a, err := netip.ParseAddr(u.Hostname()); err == nil {
			if err := p.CheckAddr(a); err != nil {
				t.Errorf("CheckURL(%q): accepted an address CheckAddr refuses: %v", raw, err)
			}
		}
		// What the HTTP client would make of the URL names the same host.
		req, err := http.NewRequest(http.MethodPost, raw, nil)
		if err != nil {
			t.Fatalf("CheckURL(%q) accepted a URL http.NewRequest refuses: %v", raw, err)
		}
		if req.URL.Host != u.Host {
			t.Errorf("CheckURL(%q): got host %q, http.NewRequest got %q", raw, u.Host, req.URL.Host)
		}
	})
}

// lookupFunc adapts a function to TargetPolicy.Resolver.
type lookupFunc func(ctx context.Context, network, host string) ([]netip.Addr, error)

func (f lookupFunc) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return f(ctx, network, host)
}

func ExampleTargetPolicy_CheckURL() {
	var p webhook.TargetPolicy // the production policy
	for _, raw := range []string{
		"https://8.8.8.8/sparr",
		"https://10.0.0.5/sparr",
		"https://[::ffff:169.254.169.254]/latest/meta-data/",
		"http://8.8.8.8/sparr",
	} {
		if _, err := p.CheckURL(context.Background(), raw); err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println("accepted", raw)
	}
	// Output:
	// accepted https://8.8.8.8/sparr
	// webhook target refused: host 10.0.0.5 is a private address; webhook URLs must be reachable on the public internet
	// webhook target refused: host ::ffff:169.254.169.254 is an IPv4-mapped IPv6 address for 169.254.169.254 (a link-local address); webhook URLs must be reachable on the public internet
	// webhook target refused: the URL uses http, which exposes deliveries to anyone on the path; use https
}
