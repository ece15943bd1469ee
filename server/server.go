// Package server is the hub: the HTTP API that banks, payment providers,
// the operator and regulators talk to. It authenticates members by the
// bearer JWTs they sign, checks their roles and rate limits, verifies their
// signed submissions, decides each change, signs its record, and applies it
// to the store as one durable command.
package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/sparr-dev/sparr/federation/members"
	"github.com/sparr-dev/sparr/federation/peering"
	"github.com/sparr-dev/sparr/federation/webhook"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/cluster"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/keyring"
	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

// MaxBodySize is the largest request body the hub reads.
const MaxBodySize = 1 << 20

// OperatorID is the member id of the operator the hub creates from the
// operator key on first start.
const OperatorID = decide.OperatorID

// Defaults of the hub's configuration, used by [New] for zero fields and
// by sparr serve for its flags' defaults.
const (
	DefaultJobInterval        = 10 * time.Second // expiry, reminders and feed retention
	DefaultCheckpointInterval = 10 * time.Second // a new checkpoint if the log grew
	DefaultMaxStatsEntries    = 1_000_000        // log entries GET /v1/audit/stats counts in one request
)

// Delivery configures webhook delivery. Zero fields mean the defaults.
type Delivery struct {
	// Schedule is the retry schedule: the wait before each retry after
	// consecutive failures (len(Schedule)+1 attempts before the endpoint
	// is paused); nil means webhook.DefaultSchedule. No wait may be
	// negative.
	Schedule []time.Duration
	// Jitter spreads each scheduled wait by up to ± this fraction, from 0
	// to 1; nil means webhook.DefaultJitter (0.1), and 0 turns jitter
	// off.
	Jitter *float64
	// Timeout bounds one attempt; default webhook.DefaultTimeout.
	Timeout time.Duration
	// Concurrency is how many deliveries to one endpoint may be in flight;
	// default webhook.DefaultConcurrency (in sequence order).
	Concurrency int
	// Client, if set, replaces the client built from Config.Targets (tests
	// that need special transports).
	Client *http.Client
}

// A Rate is a token-bucket limit: PerSecond on average, Burst at once.
type Rate struct {
	PerSecond float64
	Burst     int
}

// Limits are the per-member rate limits of each route class. Zero fields
// mean the defaults of [DefaultLimits].
type Limits struct {
	Tokens Rate // token evaluation batches
	Writes Rate // submissions and admin changes
	Checks Rate // checks
	Reads  Rate // everything else
}

// DefaultLimits returns the default rate limits: token batches 20/s
// (burst 40), writes 50/s (100), checks 500/s (1000), other requests
// 100/s (200).
func DefaultLimits() Limits {
	return Limits{Tokens: Rate{20, 40}, Writes: Rate{50, 100}, Checks: Rate{500, 1000}, Reads: Rate{100, 200}}
}

func (l *Limits) defaults() {
	def := DefaultLimits()
	for _, r := range []struct{ rate, def *Rate }{
		{&l.Tokens, &def.Tokens}, {&l.Writes, &def.Writes}, {&l.Checks, &def.Checks}, {&l.Reads, &def.Reads},
	} {
		if r.rate.PerSecond == 0 {
			*r.rate = *r.def
		}
	}
}

// Config is what [New] needs. Store, Keys and Issuer are required.
type Config struct {
	// Issuer is the hub's URL (https://hub.example): the "iss" of its
	// records and the "aud" members sign for.
	Issuer string
	Store  *store.Store
	Keys   *keyring.Keys
	// Policy is what the hub allows; zero fields mean decide.DefaultPolicy's.
	Policy decide.Policy
	Limits Limits
	// Logger receives JSON-ready structured logs; nil discards them.
	Logger *slog.Logger
	// Now is the hub's clock; nil means time.Now.
	Now func() time.Time
	// Registry receives the hub's metrics; nil makes a new one.
	Registry *prometheus.Registry
	// Build is the binary's build, exported as sparr_build_info; a zero
	// Build means ReadBuild("").
	Build Build
	// AllowInsecureURLs lets member key sets be fetched over plain HTTP
	// (development and tests only).
	AllowInsecureURLs bool
	// JWKSClient fetches members' key sets; nil means a client with a
	// 10-second timeout whose transport dials through Targets, as webhook
	// deliveries do. Redirects are never followed, whatever the client.
	JWKSClient *http.Client
	// TrustedProxies are the proxies whose X-Forwarded-For is believed;
	// nil trusts none.
	TrustedProxies []string
	// JobInterval is how often expiry and reminders run. Default
	// DefaultJobInterval.
	JobInterval time.Duration
	// CheckpointInterval is how often the hub signs a new checkpoint of
	// its exchange log, if the log has grown. Default
	// DefaultCheckpointInterval.
	CheckpointInterval time.Duration
	// Targets decides which webhook URLs members may register and which
	// addresses the hub may connect to, for webhooks and members' key sets
	// (SSRF protection). The zero value allows public HTTPS addresses only.
	Targets  webhook.TargetPolicy
	Delivery Delivery
	// MaxStatsEntries is the most exchange-log entries one GET
	// /v1/audit/stats counts (its time range, whatever its other
	// filters); a wider range is refused, so that no request keeps the hub
	// reading the whole log. Default DefaultMaxStatsEntries.
	MaxStatsEntries int
	// TracerProvider receives the hub's spans (OpenTelemetry): one per
	// request, with its decision, store commit and token evaluation, and
	// one per webhook delivery attempt. Nil means none are made.
	TracerProvider trace.TracerProvider
	// PollWait is how long an SSF poll (RFC 8936) without
	// returnImmediately waits for a SET when none is queued. Default
	// DefaultPollWait.
	PollWait time.Duration
	// LastCheckpoint is the file where the hub keeps the last checkpoint
	// of its exchange log it signed, apart from the data file, so that a
	// data file restored from an older backup or truncated cannot take it
	// back: New refuses to serve a log that does not extend it
	// ([ErrRollback]), unless DeclareRollback is given. Empty means no
	// such file (tests, embedded hubs); New then checks the data file
	// against its own checkpoints only.
	LastCheckpoint string
	// DeclareRollback, if set, is the operator's reason for serving a data
	// file whose log does not extend the last checkpoint signed (see
	// [protocol.RollbackReason] for its form): New logs the declared
	// rollback as the first entry after the file's log and signs a
	// checkpoint covering it. New refuses it when nothing was rolled back
	// ([ErrNothingToDeclare]).
	DeclareRollback string
	// Witnesses are the witnesses the hub asks to cosign each new
	// checkpoint (c2sp.org/tlog-witness); their cosignatures are kept and
	// served with the checkpoint. A witness that is down or refuses is
	// tried again, with a growing wait, and never holds up a write.
	Witnesses []Witness
	// WitnessClient posts to witnesses; nil means a plain client (the
	// operator chose the witnesses' URLs: no target policy applies).
	WitnessClient *http.Client
	// WitnessRetry is the first wait after a witness failed, doubling up
	// to WitnessRetryMax; WitnessTimeout bounds one request. Defaults
	// DefaultWitnessRetry, DefaultWitnessRetryMax, DefaultWitnessTimeout.
	WitnessRetry, WitnessRetryMax, WitnessTimeout time.Duration
	// ClockSkew is the clock difference tolerated between a member and
	// the hub in bearer tokens and submissions, as the Skew of
	// protocol.BearerOptions: 0 means protocol.DefaultSkew, protocol.NoSkew
	// none at all. New refuses a value protocol.CheckSkew refuses.
	ClockSkew time.Duration
	// Jurisdiction is the hub's country (ISO 3166-1 alpha-2, "SE"): the
	// hub is home to the identifier types of that jurisdiction and to those
	// of none (e-mail, phone), and relays token requests for the types of
	// another to the peer registered for it. "" makes a hub that is home to
	// every type and relays nothing, as a hub without peers is.
	Jurisdiction string
	// Peers are the hubs this hub relays to, at most one per jurisdiction
	// (docs/peering.md).
	Peers []*peering.Peer
	// PeerClient makes the requests to peers; nil means a client with
	// each peer's Timeout.
	PeerClient *http.Client
	// PeerKeyDir is the directory of this node's private keys for the
	// peers registered through the operator API (sparr serve:
	// DIR/keys/peers); a registration names its key file there. Empty: no
	// peer can be registered through the API.
	PeerKeyDir string
	// PeerTimeout bounds one request to a peer registered through the API;
	// 0 means peering.DefaultTimeout.
	PeerTimeout time.Duration
	// PeerRefresh is how often the hub reads its peers' discovery
	// documents for a rotated token key; 0 means DefaultPeerRefresh, a
	// negative value never (a refused epoch still makes the hub look).
	PeerRefresh time.Duration
	// Cluster, if set, makes the hub one node of a replicated hub: every
	// command goes through the node's replicated log, a follower forwards
	// API requests to the leader, and only the leader runs the
	// dispatcher, the jobs and the checkpoints (see docs/operations.md,
	// Running a cluster). Nil is the single-node hub. Every node has the
	// same Issuer and keys.
	Cluster *cluster.Node
	// ClusterURLs maps the cluster's node ids to their HTTP addresses,
	// where followers forward requests to the leader.
	ClusterURLs map[string]string
	// PeerFeedInterval is how often the hub catches up from the feeds of
	// the peers it is subscribed to (and resumes its endpoint at a peer
	// that paused it); 0 means DefaultPeerFeedInterval, a negative value
	// never.
	PeerFeedInterval time.Duration
}

// A Hub is a running hub: an http.Handler and its background jobs.
type Hub struct {
	cfg        Config
	store      *store.Store
	keys       *keyring.Keys
	members    *members.Keys
	log        *slog.Logger
	now        func() time.Time
	engine     *gin.Engine
	metrics    *metrics
	limits     *limiter
	tokenRates *tokenRates
	bearers    *bearerCache
	decide     *decide.Decider
	tracer     trace.Tracer
	tracing    bool // Config.TracerProvider was given

	// dispatcherMu guards dispatcher, replaced each time a replicated
	// hub's node gains the leadership.
	dispatcherMu sync.Mutex
	dispatcher   *webhook.Dispatcher
	polls        *pollWaiters
	// leadMu guards lead, the leader's work while it runs.
	leadMu  sync.Mutex
	lead    *leaderWork
	leaders int // how many times the leader's work started
	cluster *clusterState

	witnesses     []*witnessLink
	witnessClient *http.Client

	checkpointMu sync.Mutex
	checkpoint   publishedCheckpoint
	// anchorMu guards anchored, the size of the checkpoint kept in
	// Config.LastCheckpoint.
	anchorMu sync.Mutex
	anchored uint64

	peerTable *peerTable
}

// leaderWork is what only the leader runs: the dispatcher, the jobs, the
// checkpoints and the witnesses, until stop is closed.
type leaderWork struct {
	stop       chan struct{}
	jobs       sync.WaitGroup
	dispatcher *webhook.Dispatcher
}

// New builds a hub over an open store. It first checks the store's
// exchange log against its own latest checkpoint and against the last
// checkpoint the hub signed (Config.LastCheckpoint), and refuses a log that
// does not extend them, unless the operator declares the rollback (see
// Config.DeclareRollback; the errors are [*TreeError]s). It makes sure the operator exists as
// a member, with the operator key as its only key; suspends the members
// the hub suspends at start (see [decide.Decider.AtStart]: when the
// operator key was replaced, every other member holding the operator
// role; a member with the reserved id hub); and logs which members hold
// the operator role.
func New(cfg Config) (*Hub, error) {
	tracing := cfg.TracerProvider != nil
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	h := &Hub{
		cfg:        cfg,
		store:      cfg.Store,
		keys:       cfg.Keys,
		log:        cfg.Logger,
		now:        cfg.Now,
		limits:     newLimiter(cfg.Limits),
		tokenRates: newTokenRates(),
		bearers:    newBearerCache(1 << 16),
		tracer:     cfg.TracerProvider.Tracer(tracerName),
		tracing:    tracing,
		polls:      newPollWaiters(),
		peerTable:  newPeerTable(),
	}
	h.decide = &decide.Decider{
		Issuer: cfg.Issuer, Policy: cfg.Policy, TokenEpoch: cfg.Keys.Token.Epoch(), AllowInsecureURLs: cfg.AllowInsecureURLs,
		Sign: func(r *protocol.Record) ([]byte, error) { return protocol.SignRecord(r, cfg.Keys.Active()) },
	}
	h.decide.Peers = h.peersOf
	jwksClient := cfg.JWKSClient
	if jwksClient == nil {
		jwksClient = &http.Client{Transport: cfg.Targets.NewTransport(0), Timeout: 10 * time.Second}
	}
	h.members = members.NewKeys(members.KeysConfig{Directory: cfg.Store, HTTPClient: jwksClient, Now: cfg.Now})
	var err error
	if h.witnesses, err = newWitnessLinks(cfg.Witnesses); err != nil {
		return nil, err
	}
	h.witnessClient = cfg.WitnessClient
	if h.witnessClient == nil {
		h.witnessClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if h.metrics, err = newMetrics(cfg.Registry, cfg.Build); err != nil {
		return nil, err
	}
	cfg.Store.OnCommit(h.metrics.observeCommit)
	for _, l := range h.witnesses {
		for _, outcome := range witnessOutcomes {
			h.metrics.witnesses.WithLabelValues(l.cfg.Name, outcome)
		}
	}
	for _, c := range []prometheus.Collector{&queueCollector{store: cfg.Store}, &logCollector{hub: h}, &witnessCollector{hub: h}} {
		if err := cfg.Registry.Register(c); err != nil {
			return nil, err
		}
	}
	h.dispatcher = h.newDispatcher()
	if cfg.Cluster != nil {
		if cfg.DeclareRollback != "" {
			return nil, errors.New("server: a replicated hub cannot declare a rollback; restore the cluster from a backup as docs/operations.md describes")
		}
		if err := h.setupCluster(); err != nil {
			return nil, err
		}
		// Until this node leads, it delivers nothing.
		h.dispatcher.Close()
	}
	// Before anything is written: the hub serves no fork of its log.
	if err := h.checkTree(); err != nil {
		return nil, err
	}
	if cfg.Cluster == nil {
		// A replicated hub does this when its node gains the leadership.
		if err := h.startMembers(); err != nil {
			return nil, err
		}
	}
	if h.engine, err = h.routes(); err != nil {
		return nil, err
	}
	return h, nil
}

// withDefaults refuses a Config New cannot run with, and sets every zero
// field that has a default to it.
func (cfg *Config) withDefaults() error {
	switch {
	case cfg.Store == nil:
		return errors.New("server: Config.Store is required")
	case cfg.Keys == nil:
		return errors.New("server: Config.Keys is required")
	case cfg.Issuer == "":
		return errors.New("server: Config.Issuer is required")
	case cfg.Delivery.Jitter != nil && (*cfg.Delivery.Jitter < 0 || *cfg.Delivery.Jitter > 1):
		return fmt.Errorf("server: Config.Delivery.Jitter is %v; want 0 (none) to 1", *cfg.Delivery.Jitter)
	case slices.ContainsFunc(cfg.Delivery.Schedule, func(d time.Duration) bool { return d < 0 }):
		return fmt.Errorf("server: Config.Delivery.Schedule %v has a negative wait", cfg.Delivery.Schedule)
	}
	if err := checkPeers(cfg.Jurisdiction, cfg.Peers); err != nil {
		return fmt.Errorf("server: Config.Peers: %w", err)
	}
	if cfg.PeerFeedInterval == 0 {
		cfg.PeerFeedInterval = DefaultPeerFeedInterval
	}
	if cfg.PeerRefresh == 0 {
		cfg.PeerRefresh = DefaultPeerRefresh
	}
	if cfg.PeerClient == nil {
		cfg.PeerClient = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if err := protocol.CheckSkew(cfg.ClockSkew); err != nil {
		return fmt.Errorf("server: Config.ClockSkew: %w", err)
	}
	if cfg.PollWait <= 0 {
		cfg.PollWait = DefaultPollWait
	}
	cfg.Policy = cfg.Policy.WithDefaults()
	if err := cfg.Policy.Quotas.Validate(); err != nil {
		return fmt.Errorf("server: Config.Policy.Quotas: %w", err)
	}
	cfg.Limits.defaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Logger = slog.New(traceLogs{cfg.Logger.Handler()})
	if cfg.TracerProvider == nil {
		cfg.TracerProvider = noop.NewTracerProvider()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Build == (Build{}) {
		cfg.Build = ReadBuild("")
	}
	if cfg.JobInterval == 0 {
		cfg.JobInterval = DefaultJobInterval
	}
	if cfg.CheckpointInterval == 0 {
		cfg.CheckpointInterval = DefaultCheckpointInterval
	}
	if cfg.WitnessRetry <= 0 {
		cfg.WitnessRetry = DefaultWitnessRetry
	}
	if cfg.WitnessRetryMax <= 0 {
		cfg.WitnessRetryMax = DefaultWitnessRetryMax
	}
	if cfg.WitnessTimeout <= 0 {
		cfg.WitnessTimeout = DefaultWitnessTimeout
	}
	if cfg.MaxStatsEntries <= 0 {
		cfg.MaxStatsEntries = DefaultMaxStatsEntries
	}
	if cfg.Delivery.Timeout == 0 {
		cfg.Delivery.Timeout = webhook.DefaultTimeout
	}
	return nil
}

// newDispatcher makes the webhook dispatcher of the hub's configuration.
func (h *Hub) newDispatcher() *webhook.Dispatcher {
	cfg := h.cfg
	client := cfg.Delivery.Client
	if client == nil {
		client = &http.Client{
			Transport: cfg.Targets.NewTransport(cfg.Delivery.Timeout),
			// Never follow a receiver's redirect: it could point anywhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return webhook.NewDispatcher(webhook.DispatcherConfig{
		Outbox: cfg.Store, Client: client, HubKey: cfg.Keys.Webhook,
		Schedule: cfg.Delivery.Schedule, Jitter: cfg.Delivery.Jitter, Timeout: cfg.Delivery.Timeout, Concurrency: cfg.Delivery.Concurrency,
		Now: cfg.Now, Logger: cfg.Logger.With("component", "dispatcher"), Observer: h.metrics,
		Tracer: cfg.TracerProvider.Tracer(webhook.TracerName),
	})
}

// ServeHTTP serves the API.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.engine.ServeHTTP(w, r) }

// MetricsHandler serves the hub's Prometheus metrics; mount it on a
// listener that only monitoring can reach.
func (h *Hub) MetricsHandler() http.Handler {
	return promhttpHandler(h.cfg.Registry, h.log)
}

// Start publishes a checkpoint of the exchange log, and runs the webhook
// dispatcher and the background jobs (checkpoints, expiry, reminders, feed
// retention) until Close. Deliveries queued before a
// restart go out first. A replicated hub (Config.Cluster) runs them only
// while its node leads the cluster.
func (h *Hub) Start() error {
	if h.cluster != nil {
		h.startCluster()
		return nil
	}
	return h.startLeading()
}

// startLeading starts the leader's work: the single-node hub's at Start,
// a replicated hub's each time its node gains the leadership.
func (h *Hub) startLeading() error {
	h.leadMu.Lock()
	defer h.leadMu.Unlock()
	if h.lead != nil {
		return nil
	}
	// A fresh hub publishes its first checkpoint at once.
	if _, err := h.PublishCheckpoint(); err != nil {
		return fmt.Errorf("publish checkpoint: %w", err)
	}
	eps, err := h.store.Endpoints()
	if err != nil {
		return fmt.Errorf("read endpoints: %w", err)
	}
	for _, e := range eps {
		h.metrics.watch(e.Member)
	}
	d := h.currentDispatcher()
	if h.leaders > 0 || h.cluster != nil {
		d = h.newDispatcher()
		h.dispatcherMu.Lock()
		h.dispatcher = d
		h.dispatcherMu.Unlock()
	}
	h.leaders++
	if err := d.Start(); err != nil {
		return err
	}
	w := &leaderWork{stop: make(chan struct{}), dispatcher: d}
	w.jobs.Add(2)
	go func() {
		defer w.jobs.Done()
		h.runJobs(w.stop)
	}()
	if h.cfg.PeerFeedInterval > 0 {
		w.jobs.Add(1)
		go func() {
			defer w.jobs.Done()
			h.runPeerFeeds(w.stop)
		}()
	}
	go func() {
		defer w.jobs.Done()
		h.runCheckpoints(w.stop)
	}()
	for _, l := range h.witnesses {
		w.jobs.Add(1)
		go func() {
			defer w.jobs.Done()
			h.runWitness(l, w.stop)
		}()
	}
	if h.cfg.PeerRefresh > 0 {
		w.jobs.Add(1)
		go func() {
			defer w.jobs.Done()
			h.runPeerRefresh(w.stop)
		}()
	}
	h.lead = w
	h.notifyWitnesses()
	return nil
}

// stopLeading stops the leader's work and waits for it; it reports whether
// it was running.
func (h *Hub) stopLeading() bool {
	h.leadMu.Lock()
	defer h.leadMu.Unlock()
	w := h.lead
	if w == nil {
		return false
	}
	h.lead = nil
	close(w.stop)
	w.dispatcher.Close()
	w.jobs.Wait()
	return true
}

// currentDispatcher returns the dispatcher of the leader's work (closed,
// and so doing nothing, on a node that does not lead).
func (h *Hub) currentDispatcher() *webhook.Dispatcher {
	h.dispatcherMu.Lock()
	defer h.dispatcherMu.Unlock()
	return h.dispatcher
}

// Close stops the dispatcher and the background jobs and waits for them.
// It does not close the store (nor a replicated hub's node). Deliveries in
// flight are cut off and stay queued, to be sent again (with the same
// webhook-id) after a restart.
func (h *Hub) Close() error {
	if h.cluster != nil {
		h.closeCluster()
	}
	if !h.stopLeading() {
		h.currentDispatcher().Close()
	}
	return nil
}

// commitFor applies cmd, a command made for the request's member, charged
// to the member's daily allowance of stored bytes, and wakes the
// dispatcher. It answers the request itself when the hub failed or the
// allowance is spent, and otherwise returns the result.
func (h *Hub) commitFor(c *gin.Context, what string, cmd state.Command) (*store.Result, bool) {
	m, now := member(c), h.now()
	if err := h.decide.Charge(m, cmd, now); err != nil {
		h.internal(c, "charge "+what, err)
		return nil, false
	}
	span := h.span(c, "store.commit")
	res, err := h.commit(cmd)
	span.End()
	switch {
	case err != nil:
		h.internal(c, what, err)
		return nil, false
	case res.QuotaExceeded:
		h.metrics.quotaRefused.WithLabelValues(m.ID, "stored-bytes-per-day").Inc()
		p, secs := h.decide.StorageQuotaProblem(m, now)
		c.Header("Retry-After", strconv.Itoa(secs))
		h.fail(c, p)
		return nil, false
	}
	return res, true
}

// commit applies a command and wakes the dispatcher for every member it
// queued deliveries for.
func (h *Hub) commit(cmd state.Command) (*store.Result, error) {
	res, err := h.store.Apply(cmd)
	if err != nil {
		return nil, err
	}
	for _, m := range res.Queued {
		h.currentDispatcher().Notify(m)
		h.polls.notify(m)
	}
	return res, nil
}

// startMembers applies what the hub changes about its members at start:
// the operator member created on first start, or its key updated if the
// operator key was replaced, and the members the hub suspends (see
// [decide.Decider.AtStart]). Then it logs who holds the operator role.
func (h *Hub) startMembers() error {
	ks, err := protocol.NewKeySet(h.keys.Operator)
	if err != nil {
		return err
	}
	jwks, err := ks.MarshalJSON()
	if err != nil {
		return err
	}
	ms, err := h.store.Members()
	if err != nil {
		return fmt.Errorf("read members: %w", err)
	}
	for _, cmd := range h.decide.AtStart(ms, jwks, h.now()) {
		res, err := h.store.Apply(cmd)
		if err != nil {
			return fmt.Errorf("%s %s: %w", cmd.Entry.Action, cmd.Member.ID, err)
		}
		if res.Conflict {
			return fmt.Errorf("%s %s: changed concurrently; start again", cmd.Entry.Action, cmd.Member.ID)
		}
		h.members.Forget(cmd.Member.ID)
		h.bearers.forget(cmd.Member.ID)
		if cmd.Entry.Action == protocol.LogMemberSuspended {
			var reason string
			for _, a := range cmd.Entry.Attrs {
				if a.Key == "reason" {
					reason = a.Value
				}
			}
			h.log.Warn("member suspended at start; see docs/operations.md, Revoking operator credentials",
				"member", cmd.Member.ID, "reason", reason, "log_index", res.LogIndex)
		}
	}
	return h.logOperators()
}

// logOperators logs, at start, which members hold the operator role, and
// warns of those besides the operator: each can register, change and
// suspend members and download the store with keys of its own, which
// replacing the operator key does not change once they are resumed. It
// logs as an error a member with the reserved id hub.
func (h *Hub) logOperators() error {
	ms, err := h.store.Members()
	if err != nil {
		return fmt.Errorf("read members: %w", err)
	}
	active, suspended, others := []string{}, []string{}, []string{}
	for _, m := range ms {
		if m.ID == api.HubID {
			h.log.Error("a member has the id reserved for the hub's own exchange-log entries; it stays suspended and cannot be resumed: register the institution under another id",
				"member", m.ID, "status", string(m.Status))
		}
		if !m.HasRole(api.RoleOperator) {
			continue
		}
		if !m.Active() {
			suspended = append(suspended, m.ID)
			continue
		}
		active = append(active, m.ID)
		if m.ID != OperatorID {
			others = append(others, m.ID)
		}
	}
	h.log.Info("members holding the operator role", "active", active, "suspended", suspended)
	if len(others) > 0 {
		h.log.Warn("members besides operator hold the operator role, with keys of their own; revoke any nobody vouches for (docs/operations.md, Revoking operator credentials)",
			"members", others)
	}
	return nil
}
