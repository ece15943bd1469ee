package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/trace"

	"github.com/sparr-dev/sparr/federation/peering"
	"github.com/sparr-dev/sparr/federation/webhook"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/cluster"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/keyring"
	"github.com/sparr-dev/sparr/server/store"
)

// The HTTP server's limits. Request bodies are at most server.MaxBodySize
// (1 MiB), so reading one takes seconds at most; answers are small, except
// a backup, which streams the whole data file and gets backupWriteTimeout.
const (
	readHeaderTimeout  = 10 * time.Second
	readTimeout        = 30 * time.Second
	writeTimeout       = 60 * time.Second
	idleTimeout        = 2 * time.Minute
	maxHeaderBytes     = 64 << 10
	backupWriteTimeout = 2 * time.Hour
	backupPath         = "/v1/admin/backup"
)

// devMember is the example member --dev prepares a key for.
const devMember = "bank-a"

var ginMode sync.Once

// serveFlags are the flags of sparr serve.
type serveFlags struct {
	data, addr, issuer       string
	tlsCert, tlsKey          string
	insecureHTTP, dev        bool
	metricsAddr              string
	otlpEndpoint             string
	standardDays, maxExtDays int
	maxThaw                  time.Duration
	reminderDays             int
	legalBasis               string
	suspicionDays            int
	payeeLegalBasis          string
	payeeThreshold           int
	payeeDays                int
	payeeBanks               payeeBanksValue
	detailsDays              int
	denialDays               int
	erasurePeriod            time.Duration
	consumerAuthMaxAge       time.Duration
	disputeAckDays           int
	disputeResolveDays       int
	attestationDeadline      time.Duration
	withholdSuspicions       bool
	tokensPerSecond          float64
	tokensPerDay             int64
	storedBytesPerDay        int64
	tokens, writes           server.Rate
	checks, reads            server.Rate
	trustedProxies           string
	logLevel                 slog.Level
	shutdownTimeout          time.Duration
	feedDays                 int
	webhookAllow             string
	webhookHTTP              bool
	deliveryTimeout          time.Duration
	deliveryConcurrency      int
	retrySchedule            scheduleValue
	witnesses                witnessesValue
	retryJitter              float64
	maxThawAhead             time.Duration
	clockSkew                time.Duration
	checkpointInterval       time.Duration
	declareRollback          string
	jurisdiction             string
	peersFile                string
	peers                    []*peering.Peer
	cluster                  clusterFlags
}

func runServe(ctx context.Context, e *env, name string, args []string) error {
	fs := e.flags(name, "--data DIR (--tls-cert FILE --tls-key FILE | --insecure-http) [flags]\n       "+program(name)+" --dev",
		"Serve runs the hub over DIR/keys and DIR/hub.db until SIGINT or SIGTERM, then\nshuts down gracefully. --dev runs a development hub on loopback for a first try.")
	// Every default comes from the package that applies it, so that the
	// flags and the hub cannot drift apart.
	policy, limits := decide.DefaultPolicy(), server.DefaultLimits()
	f := &serveFlags{
		tokens: limits.Tokens, writes: limits.Writes, checks: limits.Checks, reads: limits.Reads,
	}
	fs.StringVar(&f.data, "data", "", "the hub's data `DIR`: DIR/keys and DIR/hub.db (required unless --dev)")
	fs.note("data", "./sparr-data with --dev")
	fs.StringVar(&f.addr, "addr", "", "`ADDR` to listen on, host:port")
	fs.note("addr", ":8443, or 127.0.0.1:8080 with --dev")
	fs.StringVar(&f.issuer, "issuer", "", "the hub's public `URL`: the iss of its records and the aud of members' tokens")
	fs.note("issuer", "https://HOST:PORT from --addr, or http:// with --dev or --insecure-http")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate chain, PEM `FILE`")
	fs.StringVar(&f.tlsKey, "tls-key", "", "TLS private key, PEM `FILE`")
	fs.BoolVar(&f.insecureHTTP, "insecure-http", false, "serve plain HTTP (behind a TLS-terminating proxy only)")
	fs.BoolVar(&f.dev, "dev", false, "development hub: keys created on first start, plain HTTP on loopback only, member key URLs over http allowed")
	fs.StringVar(&f.metricsAddr, "metrics-addr", "127.0.0.1:9464", "`ADDR` to serve GET /metrics on, apart from the API; empty or off disables it")
	fs.StringVar(&f.otlpEndpoint, "otlp-endpoint", "", "OpenTelemetry collector `URL` to send the hub's traces to over OTLP/HTTP, such as http://127.0.0.1:4318/v1/traces; without it, traces go where OTEL_EXPORTER_OTLP_ENDPOINT says, and without that there are none")
	fs.note("metrics-addr", "127.0.0.1:9464, or a free loopback port with --dev")
	fs.IntVar(&f.standardDays, "standard-flag-days", inDays(policy.StandardFlag), "`DAYS` a standard flag lasts, and the longest a member may ask for")
	fs.IntVar(&f.maxExtDays, "max-extended-flag-days", inDays(policy.MaxExtendedFlag), "longest extended flag, in `DAYS`")
	fs.DurationVar(&f.maxThaw, "max-thaw", policy.MaxThaw, "longest thaw window, a `DURATION`")
	fs.DurationVar(&f.maxThawAhead, "max-thaw-ahead", policy.MaxThawAhead, "how far ahead of now a thaw may start, a `DURATION`")
	fs.note("max-thaw-ahead", "720h (30 days)")
	fs.DurationVar(&f.clockSkew, "clock-skew", protocol.DefaultSkew, "clock difference tolerated between a member and the hub when checking bearer tokens and submissions, a `DURATION` from 0 to "+protocol.MaxSkew.String())
	fs.note("clock-skew", protocol.DefaultSkew.String())
	fs.IntVar(&f.reminderDays, "reminder-days", inDays(policy.Reminder), "`DAYS` before expiry that the origin member is reminded")
	fs.StringVar(&f.legalBasis, "suspicion-legal-basis", "", "legal `BASIS` under which suspicions (GDPR Art. 10 data) are shared; empty disables suspicions")
	fs.IntVar(&f.suspicionDays, "suspicion-retention-days", inDays(policy.SuspicionRetention), "`DAYS` a suspicion is kept")
	fs.StringVar(&f.payeeLegalBasis, "payee-legal-basis", policy.PayeeLegalBasis, "legal `BASIS` payee records state (PSR Art. 83)")
	fs.IntVar(&f.payeeThreshold, "payee-threshold", policy.PayeeThreshold, "fewest of a member's own `CUSTOMERS` whose reports let it report a payee")
	fs.IntVar(&f.payeeDays, "payee-retention-days", inDays(policy.PayeeRetention), "`DAYS` a payee record counts after its last report, and a closed recall is kept after its outcome")
	fs.Var(&f.payeeBanks, "payee-banks", "which member holds the accounts of which bank, for recall requests: `LIST` of bank=member, as SE:500=bank-b,SE:800=bank-s")
	fs.Var((*rateValue)(&f.tokens), "rate-tokens", "per-member limit on token batches, `PERSEC/BURST`")
	fs.Var((*rateValue)(&f.writes), "rate-writes", "per-member limit on submissions and admin changes, `PERSEC/BURST`")
	fs.Var((*rateValue)(&f.checks), "rate-checks", "per-member limit on checks, `PERSEC/BURST`")
	fs.Var((*rateValue)(&f.reads), "rate-reads", "per-member limit on other requests, `PERSEC/BURST`")
	fs.StringVar(&f.trustedProxies, "trusted-proxies", "", "comma-separated `LIST` of proxy IPs or CIDRs whose X-Forwarded-For is believed; empty trusts none")
	fs.IntVar(&f.feedDays, "feed-retention-days", inDays(policy.FeedRetention), "`DAYS` events stay in the feed; a member away longer takes a snapshot")
	fs.IntVar(&f.denialDays, "denial-window-days", inDays(policy.DenialWindow), "`DAYS` a consumer's denial of a check shows beside the advice of every later check of the subject")
	fs.IntVar(&f.detailsDays, "details-retention-days", inDays(policy.DetailsRetention), "`DAYS` the details of a log entry (which tokens a check named) are kept; the entry stays")
	fs.DurationVar(&f.erasurePeriod, "erasure-period", policy.ErasurePeriod, "the `DURATION` whose erasures are published together, in one batch of tombstones after it ends")
	fs.DurationVar(&f.consumerAuthMaxAge, "consumer-auth-max-age", policy.ConsumerAuthMaxAge, "how long after a consumer authenticated a member may act for them (history, access report, dispute), a `DURATION`")
	fs.IntVar(&f.disputeAckDays, "dispute-ack-days", policy.DisputeAckDays, "business `DAYS` (Monday to Friday) the member disputed has to acknowledge a dispute")
	fs.IntVar(&f.disputeResolveDays, "dispute-resolve-days", policy.DisputeResolveDays, "`DAYS` the member disputed has to resolve a dispute")
	fs.DurationVar(&f.attestationDeadline, "attestation-deadline", policy.AttestationDeadline, "how long members have to attest an erasure before they are listed as overdue, a `DURATION`")
	fs.note("attestation-deadline", "168h (7 days)")
	fs.BoolVar(&f.withholdSuspicions, "withhold-suspicions-from-subject", false, "keep suspicions out of consumers' histories and access reports, where the legal basis for them restricts the subject's access")
	fs.Float64Var(&f.tokensPerSecond, "tokens-per-second", policy.Quotas.TokensPerSecond, "token evaluations a member may have a second, sustained (`N`); a member's own quota overrides it")
	fs.Int64Var(&f.tokensPerDay, "tokens-per-day", policy.Quotas.TokensPerDay, "token evaluations a member may have a day, UTC (`N`); a member's own quota overrides it")
	fs.Int64Var(&f.storedBytesPerDay, "stored-bytes-per-day", policy.Quotas.StoredBytesPerDay, "`BYTES` of log a member's requests may have the hub store a day, UTC; a member's own quota overrides it")
	fs.StringVar(&f.webhookAllow, "webhook-allow", "", "comma-separated `CIDRS` webhook URLs and member key-set URLs may point into although private, loopback or link-local (SSRF allow-list; --dev allows loopback)")
	fs.BoolVar(&f.webhookHTTP, "webhook-allow-http", false, "allow plain http:// webhook URLs (--dev allows them)")
	fs.DurationVar(&f.deliveryTimeout, "delivery-timeout", webhook.DefaultTimeout, "longest one webhook delivery attempt may take, a `DURATION`")
	fs.IntVar(&f.deliveryConcurrency, "delivery-concurrency", webhook.DefaultConcurrency, "deliveries in flight per member endpoint (`N`); 1 keeps each member's events in order")
	f.retrySchedule = scheduleValue(webhook.DefaultSchedule)
	fs.Var(&f.retrySchedule, "retry-schedule", "comma-separated `WAITS` before each retry of a failed delivery; when they run out the endpoint is paused")
	fs.Float64Var(&f.retryJitter, "retry-jitter", webhook.DefaultJitter, "spread each retry wait by up to ± this `FRACTION` of it, 0 to 1; 0 turns jitter off")
	fs.DurationVar(&f.checkpointInterval, "checkpoint-interval", server.DefaultCheckpointInterval, "how often to sign a checkpoint of the exchange log when it has grown, a `DURATION`")
	fs.StringVar(&f.declareRollback, "declare-rollback", "", "serve a hub.db whose exchange log does not extend the last checkpoint the hub signed (a restore from an older backup), giving up the entries after it, and log the rollback for regulators with this `REASON` (letters, digits, spaces and . _ : -, such as \"INC-4711 disk lost: restored 02:00 backup\"); refused when nothing was rolled back")
	fs.commandLineOnly("declare-rollback")
	fs.Var(&f.witnesses, "witness", "a `WITNESS` to cosign each new checkpoint (c2sp.org/tlog-witness): its URL prefix and its note verifier key, separated by a space (quote them); repeat it, or separate several by commas")
	fs.TextVar(&f.logLevel, "log-level", slog.LevelInfo, "log `LEVEL`: debug, info, warn or error")
	fs.note("log-level", "info")
	fs.note("max-thaw", "72h")
	fs.StringVar(&f.jurisdiction, "jurisdiction", "", "the hub's country, ISO 3166-1 alpha-2 (`CC`, such as SE): it is home to that country's identifiers and relays others to --peers; empty: home to every type (docs/peering.md)")
	fs.StringVar(&f.peersFile, "peers", "", "JSON `FILE` of the hubs this hub relays to, one per jurisdiction, with key files relative to it (docs/peering.md)")
	f.cluster.register(fs)
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long to let requests finish on shutdown, a `DURATION`")
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(name, args); err != nil {
		return err
	}
	if f.cluster.enabled && !fs.given("metrics-addr") {
		// Nodes often share a machine in tests: a free loopback port,
		// which serve logs.
		f.metricsAddr = "127.0.0.1:0"
	}
	if f.dev && !fs.given("metrics-addr") {
		// A free loopback port, so that development hubs run side by
		// side; serve prints where.
		f.metricsAddr = "127.0.0.1:0"
	}
	if err := f.check(name); err != nil {
		return err
	}
	return serve(ctx, e, f)
}

// check validates the flags and fills in the defaults that depend on
// others.
func (f *serveFlags) check(name string) error {
	for _, check := range []func(name string) error{
		f.checkCluster, f.checkDev, f.checkListening, f.checkPolicy, f.checkTimeouts, f.checkAllowLists, f.checkIssuer, f.checkPeers,
	} {
		if err := check(name); err != nil {
			return err
		}
	}
	return nil
}

// checkCluster checks the flags of a replicated hub.
func (f *serveFlags) checkCluster(name string) error {
	if f.cluster.enabled && f.dev {
		return usagef("%s: --dev runs a single-node hub; drop --dev to run a cluster's node", name)
	}
	if f.cluster.enabled && f.declareRollback != "" {
		return usagef("%s: a cluster's node cannot declare a rollback; restore the cluster as docs/operations.md describes", name)
	}
	return f.cluster.check(name)
}

// checkPeers reads --peers and holds --jurisdiction to its form.
func (f *serveFlags) checkPeers(name string) error {
	if f.jurisdiction != "" && (len(f.jurisdiction) != 2 || strings.Trim(f.jurisdiction, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "") {
		return usagef("%s: --jurisdiction %q: give an upper-case ISO 3166-1 alpha-2 code, such as SE", name, f.jurisdiction)
	}
	if f.peersFile == "" {
		return nil
	}
	if f.jurisdiction == "" {
		return usagef("%s: --peers needs --jurisdiction, the hub's own country", name)
	}
	data, err := os.ReadFile(f.peersFile)
	if err != nil {
		return usagef("%s: --peers: %v", name, err)
	}
	dir := filepath.Dir(f.peersFile)
	peers, err := peering.DecodePeers(data, func(file string) ([]byte, error) {
		if !filepath.IsAbs(file) {
			file = filepath.Join(dir, file)
		}
		return os.ReadFile(file)
	})
	if err != nil {
		return usagef("%s: --peers %s: %v", name, f.peersFile, err)
	}
	for _, p := range peers {
		if p.Jurisdiction == f.jurisdiction {
			return usagef("%s: --peers %s: peer %s has this hub's own jurisdiction %s", name, f.peersFile, p.ID, p.Jurisdiction)
		}
	}
	f.peers = peers
	return nil
}

// checkDev fills in --data and --addr for --dev, and holds --dev to plain
// HTTP on loopback.
func (f *serveFlags) checkDev(name string) error {
	if !f.dev {
		return nil
	}
	if f.data == "" {
		f.data = "sparr-data"
	}
	if f.addr == "" {
		f.addr = "127.0.0.1:8080"
	}
	if f.tlsCert != "" || f.tlsKey != "" {
		return usagef("%s: --dev serves plain HTTP on loopback; drop --tls-cert and --tls-key, or drop --dev", name)
	}
	host, _, err := net.SplitHostPort(f.addr)
	if err != nil {
		return usagef("%s: --addr %q: %v; use host:port", name, f.addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return usagef("%s: --dev listens on loopback only, and %q is not a loopback address; use --addr 127.0.0.1:PORT, or drop --dev and serve with --tls-cert and --tls-key", name, f.addr)
	}
	return nil
}

// checkListening requires --data, fills in --addr, and checks the
// addresses to listen on and that TLS is either set up or deliberately
// left to a proxy. --metrics-addr off becomes empty.
func (f *serveFlags) checkListening(name string) error {
	if f.data == "" {
		return usagef("%s: missing --data DIR, the directory with keys/ and hub.db (create it with sparr init --data DIR, or try sparr serve --dev)", name)
	}
	if f.addr == "" {
		f.addr = ":8443"
	}
	if _, _, err := net.SplitHostPort(f.addr); err != nil {
		return usagef("%s: --addr %q: %v; use host:port, for example :8443", name, f.addr, err)
	}
	switch {
	case (f.tlsCert == "") != (f.tlsKey == ""):
		return usagef("%s: give both --tls-cert and --tls-key, or neither", name)
	case f.tlsCert != "" && f.insecureHTTP:
		return usagef("%s: --insecure-http and --tls-cert contradict each other; give one", name)
	case f.tlsCert == "" && !f.insecureHTTP && !f.dev:
		return usagef("%s: no TLS: give --tls-cert and --tls-key to serve HTTPS, or --insecure-http to serve plain HTTP behind a TLS-terminating proxy (or --dev to try the hub on loopback)", name)
	}
	if f.metricsAddr == "off" {
		f.metricsAddr = ""
	}
	if f.metricsAddr != "" {
		if _, _, err := net.SplitHostPort(f.metricsAddr); err != nil {
			return usagef("%s: --metrics-addr %q: %v; use host:port, or empty to disable metrics", name, f.metricsAddr, err)
		}
	}
	if err := checkOTLPEndpoint(f.otlpEndpoint); err != nil {
		return usagef("%s: %v", name, err)
	}
	return nil
}

// checkPolicy checks the hub's policy: how many days flags, reminders,
// suspicions and the feed last (and that --delivery-concurrency is
// positive, with them), the thaw windows, and the clock skew tolerated.
func (f *serveFlags) checkPolicy(name string) error {
	for _, d := range []struct {
		flag string
		v    int
	}{{"standard-flag-days", f.standardDays}, {"max-extended-flag-days", f.maxExtDays}, {"reminder-days", f.reminderDays}, {"suspicion-retention-days", f.suspicionDays},
		{"feed-retention-days", f.feedDays}, {"details-retention-days", f.detailsDays}, {"denial-window-days", f.denialDays},
		{"payee-retention-days", f.payeeDays}, {"delivery-concurrency", f.deliveryConcurrency},
		{"dispute-ack-days", f.disputeAckDays}, {"dispute-resolve-days", f.disputeResolveDays}} {
		if d.v <= 0 {
			return usagef("%s: --%s %d: want a positive number of days", name, d.flag, d.v)
		}
	}
	if f.payeeThreshold < 1 {
		return usagef("%s: --payee-threshold %d: want at least 1 customer (the PSR's threshold is 2)", name, f.payeeThreshold)
	}
	if strings.TrimSpace(f.payeeLegalBasis) == "" {
		return usagef("%s: --payee-legal-basis is empty: payee records must state the basis they are shared on (PSR Art. 83)", name)
	}
	if f.maxExtDays < f.standardDays {
		return usagef("%s: --max-extended-flag-days %d is shorter than --standard-flag-days %d", name, f.maxExtDays, f.standardDays)
	}
	if f.maxThaw <= 0 {
		return usagef("%s: --max-thaw %s: want a positive duration such as 72h", name, f.maxThaw)
	}
	if f.consumerAuthMaxAge <= 0 || f.attestationDeadline <= 0 {
		return usagef("%s: --consumer-auth-max-age %s, --attestation-deadline %s: want positive durations such as 15m and 168h", name, f.consumerAuthMaxAge, f.attestationDeadline)
	}
	if f.erasurePeriod < time.Second {
		return usagef("%s: --erasure-period %s: want a duration of at least 1s, such as 24h", name, f.erasurePeriod)
	}
	// !(x > 0) refuses NaN too, which would turn the limit off.
	switch {
	case !(f.tokensPerSecond > 0) || f.tokensPerSecond > api.MaxTokensPerSecond:
		return usagef("%s: --tokens-per-second %v: want a number above 0, up to %d, such as 10", name, f.tokensPerSecond, api.MaxTokensPerSecond)
	case f.tokensPerDay <= 0 || f.tokensPerDay > api.MaxTokensPerDay:
		return usagef("%s: --tokens-per-day %d: want a number from 1 to %d, such as 50000", name, f.tokensPerDay, api.MaxTokensPerDay)
	case f.storedBytesPerDay <= 0 || f.storedBytesPerDay > api.MaxStoredBytesPerDay:
		return usagef("%s: --stored-bytes-per-day %d: want a number from 1 to %d, such as 268435456", name, f.storedBytesPerDay, int64(api.MaxStoredBytesPerDay))
	}
	if f.maxThawAhead <= 0 {
		return usagef("%s: --max-thaw-ahead %s: want a positive duration such as 720h", name, f.maxThawAhead)
	}
	// On the command line 0 means no tolerance, so no value is negative.
	if f.clockSkew < 0 || protocol.CheckSkew(skewOption(f.clockSkew)) != nil {
		return usagef("%s: --clock-skew %s: want a duration from 0 to %s, such as %s", name, f.clockSkew, protocol.MaxSkew, protocol.DefaultSkew)
	}
	return nil
}

// checkTimeouts checks how long the hub lets requests finish on shutdown
// and a delivery take, how often it signs a checkpoint, and how it
// spreads retries; and the reason of --declare-rollback, with them.
func (f *serveFlags) checkTimeouts(name string) error {
	if f.shutdownTimeout <= 0 {
		return usagef("%s: --shutdown-timeout %s: want a positive duration such as 30s", name, f.shutdownTimeout)
	}
	if f.declareRollback != "" {
		if _, err := protocol.RollbackReason(f.declareRollback); err != nil {
			return usagef("%s: --declare-rollback: %v", name, strings.TrimPrefix(err.Error(), protocol.ErrRollback.Error()+": "))
		}
	}
	if f.checkpointInterval < time.Second {
		return usagef("%s: --checkpoint-interval %s: want at least 1s", name, f.checkpointInterval)
	}
	if f.deliveryTimeout <= 0 {
		return usagef("%s: --delivery-timeout %s: want a positive duration such as 15s", name, f.deliveryTimeout)
	}
	if f.retryJitter < 0 || f.retryJitter > 1 {
		return usagef("%s: --retry-jitter %v: want a fraction from 0 (no jitter) to 1, such as 0.1", name, f.retryJitter)
	}
	return nil
}

// checkAllowLists checks the CIDRs of --webhook-allow, and the addresses
// and CIDRs of --trusted-proxies.
func (f *serveFlags) checkAllowLists(name string) error {
	if _, err := f.targets(); err != nil {
		return usagef("%s: --webhook-allow: %v", name, err)
	}
	for _, p := range f.proxies() {
		if net.ParseIP(p) == nil {
			if _, _, err := net.ParseCIDR(p); err != nil {
				return usagef("%s: --trusted-proxies: %q is neither an IP address nor a CIDR", name, p)
			}
		}
	}
	return nil
}

// checkIssuer checks --issuer, if given, and drops its trailing slash.
func (f *serveFlags) checkIssuer(name string) error {
	if f.issuer == "" {
		return nil
	}
	u, err := url.Parse(f.issuer)
	switch {
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return usagef("%s: --issuer %q: want the hub's public URL, such as https://hub.example", name, f.issuer)
	case u.Scheme == "http" && !f.dev && !f.insecureHTTP:
		return usagef("%s: --issuer %q: members reach a TLS hub over https; use https://", name, f.issuer)
	}
	f.issuer = strings.TrimSuffix(f.issuer, "/")
	return nil
}

// targets is the SSRF policy for webhook URLs: public HTTPS only, plus
// the allow-list; --dev allows plain HTTP to loopback, for a first try.
func (f *serveFlags) targets() (webhook.TargetPolicy, error) {
	p := webhook.TargetPolicy{AllowHTTP: f.webhookHTTP || f.dev}
	if f.dev {
		p.Allow = append(p.Allow, netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"))
	}
	for c := range strings.SplitSeq(f.webhookAllow, ",") {
		if c = strings.TrimSpace(c); c == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(c)
		if err != nil {
			return p, fmt.Errorf("%q is not a CIDR such as 10.1.0.0/16", c)
		}
		p.Allow = append(p.Allow, prefix)
	}
	return p, nil
}

func (f *serveFlags) proxies() []string {
	var out []string
	for p := range strings.SplitSeq(f.trustedProxies, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// deriveIssuer makes the issuer from the listen address: the host given,
// or this machine's name when it listens on every interface, and the port
// it listens on, left out when it is the scheme's default.
func (f *serveFlags) deriveIssuer(bound net.Addr) string {
	scheme := "https"
	if f.tlsCert == "" {
		scheme = "http"
	}
	host, port, _ := net.SplitHostPort(f.addr)
	if tcp, ok := bound.(*net.TCPAddr); ok {
		port = strconv.Itoa(tcp.Port)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		host = strings.ToLower(h)
	}
	if scheme == "https" && port == "443" || scheme == "http" && port == "80" {
		if strings.Contains(host, ":") {
			return scheme + "://[" + host + "]"
		}
		return scheme + "://" + host
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// serve runs the hub until ctx is done.
func serve(ctx context.Context, e *env, f *serveFlags) error {
	ginMode.Do(func() { gin.SetMode(gin.ReleaseMode) })
	log := slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: f.logLevel}))
	keys, err := f.loadKeys(e)
	if err != nil {
		return err
	}
	tlsConfig, err := f.loadTLS()
	if err != nil {
		return err
	}
	ln, mln, err := f.listen(ctx)
	if err != nil {
		return err
	}
	defer ln.Close()
	if mln != nil {
		defer mln.Close()
	}
	issuer := f.issuer
	if issuer == "" {
		issuer = f.deriveIssuer(ln.Addr())
	}
	build := server.ReadBuild(version)
	tp, stopTracing, err := tracing(ctx, f.otlpEndpoint, build.Version, e.getenv, log)
	if err != nil {
		return err
	}
	defer func() {
		// The spans still buffered go out, or are given up on in 5 s.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := stopTracing(ctx); err != nil {
			log.Warn("sending the last traces failed", "error", err)
		}
	}()
	st, err := f.openStore()
	if err != nil {
		return err
	}
	defer closeStore(st, dbPath(f.data), log)
	var node *cluster.Node
	if f.cluster.enabled {
		if node, err = f.cluster.startNode(f.data, st, log); err != nil {
			return err
		}
		defer func() {
			if err := node.Shutdown(); err != nil {
				log.Error("stopping the cluster node failed", "error", err)
			}
		}()
	}
	hub, err := f.startHub(issuer, st, keys, log, tp, build, node)
	if err != nil {
		return err
	}
	defer func() {
		if node != nil && node.IsLeader() {
			// A leader that stops hands the leadership over first, so
			// that writes pause for a transfer, not an election.
			if err := node.TransferLeadership(""); err != nil {
				log.Warn("handing the leadership over before stopping failed; the others will elect a leader", "error", err)
			}
		}
		hub.Close()
		log.Info("background jobs stopped")
	}()
	api, metrics, errc := startHTTP(hub, tlsConfig, ln, mln, log)
	f.announce(e, log, keys, issuer, ln, mln, tlsConfig != nil)
	if node != nil && f.cluster.join != "" {
		go f.cluster.joinCluster(ctx, f.data, node, log)
	}
	serveErr := waitForStop(ctx, errc, f.shutdownTimeout, log)
	shutdownHTTP(ctx, f.shutdownTimeout, log, api, metrics)
	return serveErr
}

// loadKeys loads the hub's keys from DIR/keys; with --dev it creates them
// first if need be.
func (f *serveFlags) loadKeys(e *env) (*keyring.Keys, error) {
	kdir := keysDir(f.data)
	if f.dev {
		if err := devKeys(e, f.data); err != nil {
			return nil, err
		}
	}
	keys, err := keyring.Load(kdir)
	if errors.Is(err, keyring.ErrNoKeys) {
		return nil, fmt.Errorf("no keys in %s: create them with sparr init --data %s (or try sparr serve --dev)", kdir, shellQuote(f.data))
	}
	if err != nil {
		return nil, fmt.Errorf("load keys: %w", err)
	}
	return keys, nil
}

// loadTLS loads the TLS certificate and key, if given; without them the
// hub serves plain HTTP, and the config is nil.
func (f *serveFlags) loadTLS() (*tls.Config, error) {
	if f.tlsCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("load the TLS certificate: %w; check --tls-cert and --tls-key", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}

// listen listens on --addr for the API and on --metrics-addr for metrics;
// mln is nil when metrics are off.
func (f *serveFlags) listen(ctx context.Context) (ln, mln net.Listener, err error) {
	var lc net.ListenConfig
	ln, err = lc.Listen(ctx, "tcp", f.addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s: %w", f.addr, err)
	}
	if f.metricsAddr != "" {
		if mln, err = lc.Listen(ctx, "tcp", f.metricsAddr); err != nil {
			ln.Close()
			return nil, nil, fmt.Errorf("listen for metrics on %s: %w; choose another --metrics-addr, or --metrics-addr= to disable it", f.metricsAddr, err)
		}
	}
	return ln, mln, nil
}

// openStore opens DIR/hub.db, saying what to do when another hub has it
// or a newer sparr wrote it.
func (f *serveFlags) openStore() (*store.Store, error) {
	opts := store.Options{}
	if f.cluster.enabled {
		// Snapshots stream the file from a read transaction while
		// commands are applied: map 1 GiB from the start, so that a
		// growing file rarely waits for one.
		opts.InitialMmapSize = 1 << 30
	}
	st, err := store.Open(dbPath(f.data), opts)
	switch {
	case errors.Is(err, store.ErrLocked):
		return nil, fmt.Errorf("another hub is using %s; stop it first, or give this one another --data", dbPath(f.data))
	case errors.Is(err, store.ErrSchemaTooNew):
		return nil, fmt.Errorf("%w. Run the newer sparr that wrote it, or restore a backup this version wrote", err)
	case err != nil:
		return nil, err
	}
	return st, nil
}

// closeStore closes the store at path, and logs whether that went well.
func closeStore(st *store.Store, path string, log *slog.Logger) {
	if err := st.Close(); err != nil {
		log.Error("closing the store failed", "path", path, "error", err)
	} else {
		log.Info("store closed", "path", path)
	}
}

// startHub makes the hub the flags describe, and starts its background
// jobs.
func (f *serveFlags) startHub(issuer string, st *store.Store, keys *keyring.Keys, log *slog.Logger, tp trace.TracerProvider, build server.Build, node *cluster.Node) (*server.Hub, error) {
	targets, _ := f.targets() // checked with the other flags
	hub, err := server.New(server.Config{
		Issuer: issuer,
		Store:  st,
		Keys:   keys,
		Policy: decide.Policy{
			StandardFlag:                  days(f.standardDays),
			MaxExtendedFlag:               days(f.maxExtDays),
			MaxThaw:                       f.maxThaw,
			MaxThawAhead:                  f.maxThawAhead,
			Reminder:                      days(f.reminderDays),
			SuspicionLegalBasis:           f.legalBasis,
			SuspicionRetention:            days(f.suspicionDays),
			PayeeLegalBasis:               f.payeeLegalBasis,
			PayeeThreshold:                f.payeeThreshold,
			PayeeRetention:                days(f.payeeDays),
			PayeeBanks:                    f.payeeBanks,
			FeedRetention:                 days(f.feedDays),
			DetailsRetention:              days(f.detailsDays),
			ErasurePeriod:                 f.erasurePeriod,
			DenialWindow:                  days(f.denialDays),
			ConsumerAuthMaxAge:            f.consumerAuthMaxAge,
			DisputeAckDays:                f.disputeAckDays,
			DisputeResolveDays:            f.disputeResolveDays,
			AttestationDeadline:           f.attestationDeadline,
			WithholdSuspicionsFromSubject: f.withholdSuspicions,
			Quotas:                        api.Quotas{TokensPerSecond: f.tokensPerSecond, TokensPerDay: f.tokensPerDay, StoredBytesPerDay: f.storedBytesPerDay},
		},
		Limits:             server.Limits{Tokens: f.tokens, Writes: f.writes, Checks: f.checks, Reads: f.reads},
		Logger:             log,
		AllowInsecureURLs:  f.dev,
		TrustedProxies:     f.proxies(),
		Targets:            targets,
		Delivery:           server.Delivery{Timeout: f.deliveryTimeout, Concurrency: f.deliveryConcurrency, Schedule: f.retrySchedule, Jitter: &f.retryJitter},
		CheckpointInterval: f.checkpointInterval,
		LastCheckpoint:     lastCheckpointPath(f.data),
		DeclareRollback:    f.declareRollback,
		Witnesses:          f.witnesses,
		ClockSkew:          skewOption(f.clockSkew),
		Jurisdiction:       f.jurisdiction,
		Peers:              f.peers,
		PeerKeyDir:         peerKeysDir(f.data),
		TracerProvider:     tp,
		Build:              build,
		Cluster:            node,
		ClusterURLs:        f.cluster.urls,
	})
	if err != nil {
		return nil, fmt.Errorf("start the hub: %w%s", err, f.treeAdvice(err))
	}
	if err := hub.Start(); err != nil {
		return nil, fmt.Errorf("start the hub: %w", err)
	}
	return hub, nil
}

// treeAdvice says what to do when the hub would not serve its data file's
// exchange log; empty for any other failure.
func (f *serveFlags) treeAdvice(err error) string {
	db, last := shellQuote(dbPath(f.data)), shellQuote(lastCheckpointPath(f.data))
	switch {
	case errors.Is(err, server.ErrRollback):
		return fmt.Sprintf(". Nothing was changed. If you have a newer copy of %s, put it back instead. To serve this one, giving up the exchange-log entries after it, start once with --declare-rollback 'REASON' (an incident reference and a few words): the hub logs the rollback for regulators, and witnesses refuse to cosign until their operators are told (docs/operations.md, Backups and restore)", db)
	case errors.Is(err, server.ErrTreeDamaged):
		return fmt.Sprintf(". Nothing was changed. Set %s aside and restore the latest backup (docs/operations.md, Backups and restore)", db)
	case errors.Is(err, server.ErrLastCheckpoint):
		return fmt.Sprintf(". Nothing was changed. Put back the file %s as the hub last wrote it (it holds the hub's latest checkpoint, which regulators and witnesses also hold); do not delete it", last)
	}
	return ""
}

// startHTTP serves the hub's API on ln, over TLS if tlsConfig is set, and
// its metrics on mln unless that is nil. Each server's failure arrives on
// errc; metrics is nil without mln.
func startHTTP(hub *server.Hub, tlsConfig *tls.Config, ln, mln net.Listener, log *slog.Logger) (api, metrics *http.Server, errc chan error) {
	api = newHTTPServer(withBackupDeadline(hub), log)
	api.TLSConfig = tlsConfig
	errc = make(chan error, 2)
	go func() {
		if tlsConfig != nil {
			errc <- fmt.Errorf("serve the API: %w", api.ServeTLS(ln, "", ""))
		} else {
			errc <- fmt.Errorf("serve the API: %w", api.Serve(ln))
		}
	}()
	if mln != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", hub.MetricsHandler())
		metrics = newHTTPServer(mux, log)
		go func() { errc <- fmt.Errorf("serve metrics: %w", metrics.Serve(mln)) }()
	}
	return api, metrics, errc
}

// announce logs that the hub is listening, and prints where, with the
// hint of what to try next for --dev.
func (f *serveFlags) announce(e *env, log *slog.Logger, keys *keyring.Keys, issuer string, ln, mln net.Listener, withTLS bool) {
	attrs := []any{"addr", ln.Addr().String(), "issuer", issuer, "data", f.data, "tls", withTLS,
		"signing_kid", keys.Active().KeyID(), "log_origin", keys.LogOrigin, "suspicions", f.legalBasis != "", "dev", f.dev}
	if mln != nil {
		attrs = append(attrs, "metrics_addr", mln.Addr().String())
	}
	attrs = append(attrs, "traces", tracesTo(f.otlpEndpoint, e.getenv))
	log.Info("hub listening", attrs...)
	fmt.Fprintf(e.stdout, "listening on %s, issuer %s\n", ln.Addr(), issuer)
	if mln != nil {
		fmt.Fprintf(e.stdout, "metrics on http://%s/metrics\n", mln.Addr())
	}
	if f.dev {
		printDevHint(e, f, issuer)
	}
}

// waitForStop waits until ctx is done or a server fails, and returns the
// failure, if that came first.
func waitForStop(ctx context.Context, errc <-chan error, timeout time.Duration, log *slog.Logger) error {
	select {
	case <-ctx.Done():
		log.Info("shutting down: no new connections; waiting for requests in flight", "timeout", timeout.String())
		return nil
	case err := <-errc:
		log.Error("server failed; shutting down", "error", err)
		return err
	}
}

// shutdownHTTP stops the servers taking connections and lets the requests
// in flight finish for up to timeout; then it closes their connections.
// A nil server is skipped.
func shutdownHTTP(ctx context.Context, timeout time.Duration, log *slog.Logger, servers ...*http.Server) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	for _, s := range servers {
		if s == nil {
			continue
		}
		if err := s.Shutdown(sctx); err != nil {
			log.Warn("requests still running at the shutdown timeout; closing their connections", "error", err)
			s.Close()
		}
	}
	log.Info("HTTP servers stopped")
}

func days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }

// inDays is d in whole days.
func inDays(d time.Duration) int { return int(d / (24 * time.Hour)) }

func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// withBackupDeadline gives a backup, which streams the whole data file,
// backupWriteTimeout instead of the server's WriteTimeout.
func withBackupDeadline(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == backupPath {
			_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(backupWriteTimeout))
		}
		h.ServeHTTP(w, r)
	})
}

// devKeys creates the keys of a development hub on its first start, and a
// key for an example member to try the admin commands with.
func devKeys(e *env, data string) error {
	kdir := keysDir(data)
	exists, err := keyring.Exists(kdir)
	if err != nil {
		return fmt.Errorf("look for keys in %s: %w", kdir, err)
	}
	if !exists {
		files, err := initKeys(kdir, protocol.EdDSA, defaultLogOrigin())
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "Created the development hub's keys in %s:\n", kdir)
		printKeyFiles(e, files)
	}
	priv, pub := devMemberFiles(data)
	if _, err := os.Stat(pub); err == nil {
		return nil
	}
	k, err := protocol.GenerateSigningKey(protocol.EdDSA, rand.Reader)
	if err != nil {
		return err
	}
	privJWK, err := k.MarshalPrivateJWK()
	if err != nil {
		return err
	}
	ks, err := protocol.NewKeySet(k.Public())
	if err != nil {
		return err
	}
	pubJWKS, err := ks.MarshalJSON()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(priv), 0o700); err != nil {
		return err
	}
	for _, file := range []struct {
		path string
		data []byte
	}{{priv, privJWK}, {pub, pubJWKS}} {
		if err := os.WriteFile(file.path, append(file.data, '\n'), 0o600); err != nil {
			return fmt.Errorf("write the example member's key: %w", err)
		}
	}
	return nil
}

// devMemberFiles are the example member's private key and public key set.
func devMemberFiles(data string) (priv, pub string) {
	dir := filepath.Join(data, "dev")
	return filepath.Join(dir, devMember+".jwk"), filepath.Join(dir, devMember+".jwks.json")
}

// devMemberAddArgs is the command --dev suggests to try next.
func devMemberAddArgs(data, issuer string) []string {
	_, pub := devMemberFiles(data)
	return []string{"member", "add", "--hub", issuer, "--operator-key", keyring.OperatorKeyPath(keysDir(data)),
		"--id", devMember, "--name", "Bank A (example)", "--roles", "flag,check", "--jwks", pub}
}

func printDevHint(e *env, f *serveFlags, issuer string) {
	priv, _ := devMemberFiles(f.data)
	quoted := []string{"sparr"}
	for _, a := range devMemberAddArgs(f.data, issuer) {
		quoted = append(quoted, shellQuote(a))
	}
	fmt.Fprintf(e.stdout, `
Development hub: plain HTTP on loopback, data in %s.
The operator key is %s.
Try next, in another terminal (from a checkout, "go run ./cmd/sparr" in place of "sparr"):

  %s

%s holds that member's private key, for signing as %s.
Stop the hub with Ctrl-C.
`, f.data, keyring.OperatorKeyPath(keysDir(f.data)), strings.Join(quoted, " "), priv, devMember)
}

// A scheduleValue is a retry schedule flag: comma-separated durations,
// such as "0s,5s,5m".
type scheduleValue []time.Duration

var _ flag.Value = (*scheduleValue)(nil)

func (v *scheduleValue) String() string {
	if v == nil {
		return ""
	}
	parts := make([]string, len(*v))
	for i, d := range *v {
		switch {
		case d == 0:
			parts[i] = "0s"
		case d%time.Hour == 0:
			parts[i] = fmt.Sprintf("%dh", d/time.Hour)
		case d%time.Minute == 0:
			parts[i] = fmt.Sprintf("%dm", d/time.Minute)
		default:
			parts[i] = d.String()
		}
	}
	return strings.Join(parts, ",")
}

func (v *scheduleValue) Set(s string) error {
	var out scheduleValue
	for p := range strings.SplitSeq(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(p))
		if err != nil || d < 0 {
			return fmt.Errorf("%q: want comma-separated durations of 0s or more, such as 0s,5s,5m,30m,2h", p)
		}
		out = append(out, d)
	}
	*v = out
	return nil
}

// A rateValue is a rate limit flag, "PERSEC/BURST".
type rateValue server.Rate

var _ flag.Value = (*rateValue)(nil)

// payeeBanksValue is the value of --payee-banks: bank (country:code) to
// member id.
type payeeBanksValue map[string]string

func (v *payeeBanksValue) String() string {
	var parts []string
	for b, m := range *v {
		parts = append(parts, b+"="+m)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func (v *payeeBanksValue) Set(s string) error {
	out := payeeBanksValue{}
	for _, part := range strings.Split(s, ",") {
		bank, member, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || member == "" {
			return fmt.Errorf("%q: want bank=member, as SE:500=bank-b", part)
		}
		ref, err := protocol.ParseBankRef(bank)
		if err != nil {
			return err
		}
		if _, dup := out[ref.String()]; dup {
			return fmt.Errorf("bank %s is named twice", ref)
		}
		out[ref.String()] = member
	}
	*v = out
	return nil
}

func (r *rateValue) String() string {
	if r == nil {
		return ""
	}
	return strconv.FormatFloat(r.PerSecond, 'f', -1, 64) + "/" + strconv.Itoa(r.Burst)
}

func (r *rateValue) Set(s string) error {
	ps, b, ok := strings.Cut(s, "/")
	per, err1 := strconv.ParseFloat(ps, 64)
	burst, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || per <= 0 || burst < 1 {
		return fmt.Errorf("want PERSEC/BURST, such as 50/100, with both positive")
	}
	r.PerSecond, r.Burst = per, burst
	return nil
}

// skewOption turns --clock-skew into the Skew of protocol's options, where
// 0 means the default and NoSkew none at all.
func skewOption(d time.Duration) time.Duration {
	if d == 0 {
		return protocol.NoSkew
	}
	return d
}
