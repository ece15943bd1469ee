package replica

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// ErrLocked is returned by [Open] when another process holds the file.
var ErrLocked = errors.New("replica file in use")

// schema is the version of the file's layout. Version 1 files were
// written when the hub still sent every member the hit records of other
// members' suspicions: opening one drops the suspicions it holds and
// starts again from a snapshot, which holds the member's own alone.
const schema = 2

// The file's buckets.
var (
	bMeta  = []byte("meta")       // "schema", "seq", "bootstrapped"
	bFlags = []byte("flags")      // flag id → Flag (JSON)
	bSusps = []byte("suspicions") // suspicion id → Suspicion (JSON)
	// bAttest holds the erasure records whose deletions are done but not
	// yet attested to the hub: record jti → nil.
	bAttest = []byte("attest")
)

// A Source is where a replica reads the hub's records and reports the
// checks it answered: [*client.Client].
type Source interface {
	// WalkSnapshot streams the snapshot's verified records and returns the
	// sequence number they are consistent at.
	WalkSnapshot(ctx context.Context, fn func(*client.Event) error) (uint64, error)
	// Feed reads a page of verified events after a cursor.
	Feed(ctx context.Context, after uint64, limit int) (*client.FeedPage, error)
	// ReportReplicaChecks reports 1 to api.MaxReplicaChecks checks the
	// replica answered, for the hub to log.
	ReportReplicaChecks(ctx context.Context, checks []api.ReplicaCheck) (*api.ReplicaChecksResponse, error)
	// AttestErasure attests that the member deleted what 1 to
	// protocol.MaxAttestations erasure records named.
	AttestErasure(ctx context.Context, records ...string) (*api.AttestResponse, error)
}

var _ Source = (*client.Client)(nil)

// Config configures [Open]. Client is required.
type Config struct {
	Client Source
	// Now is the clock that thaw windows and expiries are judged by; nil
	// means time.Now.
	Now func() time.Time
	// Logger receives a line when the replica fills a gap or starts again
	// from a snapshot, and when checks could not be reported; nil
	// discards them.
	Logger *slog.Logger
	// PageSize is how many events to ask the feed for at once; default
	// api.MaxFeedPage.
	PageSize int
	// PollInterval is how often [Replica.Run] reads the feed; default one
	// minute.
	PollInterval time.Duration
	// LockTimeout is how long Open waits for another process to release
	// the file; default one second.
	LockTimeout time.Duration
	// ReportInterval is how often [Replica.Run] reports the checks
	// answered since its last report; default DefaultReportInterval.
	ReportInterval time.Duration
	// MaxUnreported is how many checks the replica holds for reporting,
	// in memory, while the hub does not take them; beyond it a check is
	// still answered but not reported, and counted in [Stats]. Default
	// DefaultMaxUnreported.
	MaxUnreported int
}

// DefaultReportInterval is how often [Replica.Run] reports checks unless
// Config.ReportInterval says otherwise: the hub's log lags the replica's
// checks by about as much.
const DefaultReportInterval = 5 * time.Second

// DefaultMaxUnreported is how many checks a replica holds for reporting
// unless Config.MaxUnreported says otherwise: 128 full reports, about
// 10 MiB (80 bytes a check). The hub takes reports of checks up to a week
// old, and docs/threat-model.md puts the largest member's identity checks
// at about 16 000 a day, so this holds a week of that member's checks
// while the hub is out of reach; a member that checks more (screening
// every payment, say) sets a larger bound.
const DefaultMaxUnreported = 128 * api.MaxReplicaChecks

// A Replica is a member's local mirror of the hub's records: every active
// flag, and the active suspicions the member reported itself, kept in a
// bbolt file and indexed in memory, so that [Replica.Check] answers for
// flags as the hub would, in well under a microsecond, without asking it.
// It records every check and reports them to the hub in batches. It is
// safe for concurrent use: any number of Checks run beside the one writer
// (Sync, Apply) and the one reporter (Flush, Run).
type Replica struct {
	cfg Config
	db  *bolt.DB
	log *slog.Logger

	wmu          sync.Mutex // the one writer
	bootstrapped bool       // guarded by wmu

	mu  sync.RWMutex // guards the index
	st  *state
	seq atomic.Uint64

	checks checkQueue
}

// Open opens the replica in the bbolt file at path, creating it if it does
// not exist, and builds its in-memory index from what the file holds. It
// does not contact the hub: a replica serves checks from its last state
// even while the hub is out of reach. Call [Replica.Sync] (or
// [Replica.Run]) next; it bootstraps a new replica from the hub's snapshot,
// and catches a reopened one up from its last sequence number.
func Open(path string, cfg Config) (*Replica, error) {
	if cfg.Client == nil {
		return nil, errors.New("replica: Config.Client is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PageSize <= 0 || cfg.PageSize > api.MaxFeedPage {
		cfg.PageSize = api.MaxFeedPage
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Minute
	}
	if cfg.LockTimeout <= 0 {
		cfg.LockTimeout = time.Second
	}
	if cfg.ReportInterval <= 0 {
		cfg.ReportInterval = DefaultReportInterval
	}
	if cfg.MaxUnreported <= 0 {
		cfg.MaxUnreported = DefaultMaxUnreported
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: cfg.LockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open replica %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open replica %s: %w", path, err)
	}
	r := &Replica{cfg: cfg, db: db, log: cfg.Logger}
	r.checks.init(cfg.MaxUnreported)
	if err := r.migrate(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open replica %s: %w", path, err)
	}
	st, seq, bootstrapped, err := r.load()
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open replica %s: %w", path, err)
	}
	r.st, r.bootstrapped = st, bootstrapped
	r.seq.Store(seq)
	return r, nil
}

// migrate brings a file of an earlier layout to this one: a version 1
// file may hold other members' suspicion hits, which the hub no longer
// sends (nor their retractions), so it forgets every suspicion and is
// bootstrapped again at the next Sync, from a snapshot that holds the
// member's own.
func (r *Replica) migrate() error {
	migrated := false
	err := r.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bMeta)
		if meta == nil {
			return nil
		}
		if v := meta.Get([]byte("schema")); len(v) != 8 || binary.BigEndian.Uint64(v) != 1 {
			return nil
		}
		migrated = true
		if tx.Bucket(bSusps) != nil {
			if err := tx.DeleteBucket(bSusps); err != nil {
				return err
			}
		}
		if err := meta.Delete([]byte("bootstrapped")); err != nil {
			return err
		}
		return meta.Put([]byte("schema"), u64(schema))
	})
	if err == nil && migrated {
		r.log.Info("replica file of layout 1: forgot the suspicions it held; the next sync starts again from a snapshot", "schema", schema)
	}
	return err
}

// load creates the buckets if need be and reads the file: its sequence
// number, whether it was ever bootstrapped, and the index.
func (r *Replica) load() (st *state, seq uint64, bootstrapped bool, err error) {
	st = newState()
	err = r.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bMeta, bFlags, bSusps, bPayees, bAttest} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bMeta)
		switch v := meta.Get([]byte("schema")); {
		case v == nil:
			if err := meta.Put([]byte("schema"), u64(schema)); err != nil {
				return err
			}
		case len(v) != 8 || binary.BigEndian.Uint64(v) != schema:
			return fmt.Errorf("the file's layout is version %x, this replica reads %d", v, schema)
		}
		if v := meta.Get([]byte("seq")); len(v) == 8 {
			seq = binary.BigEndian.Uint64(v)
		}
		bootstrapped = meta.Get([]byte("bootstrapped")) != nil
		d := newDirty()
		err := tx.Bucket(bFlags).ForEach(func(k, v []byte) error {
			f := new(Flag)
			if err := json.Unmarshal(v, f); err != nil {
				return fmt.Errorf("flag %q: %w", k, err)
			}
			st.putFlag(f, d)
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bSusps).ForEach(func(k, v []byte) error {
			s := new(Suspicion)
			if err := json.Unmarshal(v, s); err != nil {
				return fmt.Errorf("suspicion %q: %w", k, err)
			}
			st.putSuspicion(s, d)
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bPayees).ForEach(func(k, v []byte) error {
			p := new(Payee)
			if err := json.Unmarshal(v, p); err != nil {
				return fmt.Errorf("payee %q: %w", k, err)
			}
			st.putPayee(p, d)
			return nil
		})
	})
	return st, seq, bootstrapped, err
}

// Close closes the file. The replica must not be used after. Checks not
// yet reported are lost, and Close logs how many: call [Replica.Flush]
// first.
func (r *Replica) Close() error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	if n := r.checks.unreported(); n > 0 {
		r.log.Warn("replica closed with checks never reported to the hub; call Flush before Close", "unreported", n)
	}
	return r.db.Close()
}

// Check answers a check of one token for a purpose ([api.Purposes]) from
// the replica alone, and records the check to be reported to the hub
// ([Replica.Flush]). Its advice is, at this moment (Config.Now),
// api.AdviceVerify for an active flag that is not thawed, as the hub's
// check would say; api.AdviceReview, without one, for active suspicions
// the member reported itself; api.AdviceNone otherwise; with the flag and
// suspicions and their signed records. Thaw windows and expiries are
// judged when it is called, so a thaw that ends or a flag that expires
// changes the answer even before the hub's record of it arrives. Other
// members' suspicions never reach a replica: only the hub's online check
// ([client.Client.Check]) answers for them.
//
// Check refuses nothing: the purpose is the hub's to judge when the check
// is reported, and a check that finds the queue of unreported checks full
// (Config.MaxUnreported) is answered all the same, and counted in
// [Stats].
func (r *Replica) Check(purpose string, tok protocol.Token) Advice {
	now := r.cfg.Now().UnixNano()
	r.checks.add(r.checks.check(purpose, tok, now))
	return r.lookup(tok, now)
}

// Lookup answers for one token from what the replica holds, as
// [Replica.Check] does, but is not a check: nothing is recorded, and the
// hub never hears of it. It is for audits of what the replica holds, for
// tests, and for comparing the replica with the hub; a decision about an
// applicant calls Check.
func (r *Replica) Lookup(tok protocol.Token) Advice {
	return r.lookup(tok, r.cfg.Now().UnixNano())
}

// lookup answers for tok at now, in Unix nanoseconds.
func (r *Replica) lookup(tok protocol.Token, now int64) Advice {
	r.mu.RLock()
	h, ok := r.st.lookup(tok)
	r.mu.RUnlock()
	if !ok {
		return Advice{Advice: api.AdviceNone}
	}
	return h.advice(now)
}

// Records returns every record the replica holds, in sequence order: what
// the member keeps of the hub's records, for an audit.
func (r *Replica) Records() []Record {
	r.mu.RLock()
	var out []Record
	for _, f := range r.st.flags {
		out = append(out, f.Records...)
	}
	for _, s := range r.st.susps {
		out = append(out, s.Records...)
	}
	for _, p := range r.st.payees {
		out = append(out, p.Record)
	}
	r.mu.RUnlock()
	slices.SortFunc(out, func(a, b Record) int { return cmp.Compare(a.Seq, b.Seq) })
	return out
}

// Seq returns the sequence number of the last event the replica applied:
// it holds everything the hub had issued up to it.
func (r *Replica) Seq() uint64 { return r.seq.Load() }

// Stats describe what a replica holds, and what became of the checks it
// answered since it was opened.
type Stats struct {
	Seq        uint64
	Flags      int
	Suspicions int
	// Payees are the payee records held, lapsed ones until the hub's
	// payee-expired record.
	Payees int
	Tokens int

	// ChecksUnreported are checks recorded and not yet logged by the hub,
	// a report under way included.
	ChecksUnreported int
	// ChecksReported are checks the hub has logged.
	ChecksReported uint64
	// ChecksDropped are checks answered but not recorded, because
	// Config.MaxUnreported checks were waiting to be reported.
	ChecksDropped uint64
	// ChecksRefused are checks dropped because the hub refused them (an
	// unknown purpose, a token of an old epoch, a check older than the
	// hub takes).
	ChecksRefused uint64
}

// Stats returns what the replica holds, and what became of its checks.
func (r *Replica) Stats() Stats {
	r.mu.RLock()
	s := Stats{Seq: r.seq.Load(), Flags: len(r.st.flags), Suspicions: len(r.st.susps), Payees: len(r.st.payees), Tokens: len(r.st.byToken)}
	r.mu.RUnlock()
	r.checks.stats(&s)
	return s
}

// Sync brings the replica up to date with the hub: from the snapshot if it
// has never synced, or if the hub no longer keeps the events it missed
// (the feed's cursor expired); otherwise from the feed, after its last
// sequence number.
func (r *Replica) Sync(ctx context.Context) error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	return r.sync(ctx)
}

// Apply takes an event the hub pushed; it fits [client.ReceiverConfig]'s
// Handle. A push tells the replica that the hub has something new, and no
// more: unless the replica already holds the event's sequence number, it
// reads the feed from its last sequence number, which brings the event and
// every event before it that the replica has not applied, whatever types
// the member's endpoint subscribes to. The delivery's sequence headers,
// which its signature does not cover, never move the replica: only the
// feed and the snapshot do. A delivery claiming a sequence number the
// hub's feed has not reached is logged and ignored. Apply returns when the
// changes are in the file.
func (r *Replica) Apply(ctx context.Context, e *client.Event) error {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	if r.bootstrapped && e.Seq <= r.seq.Load() {
		return nil
	}
	if err := r.sync(ctx); err != nil {
		return err
	}
	if head := r.seq.Load(); head < e.Seq {
		r.log.Warn("a delivery claims a sequence number past the end of the hub's feed: ignored; was it altered, or passed on by another member?",
			"claimed_seq", e.Seq, "feed_seq", head, "record", e.Record.ID, "webhook_id", e.WebhookID)
	}
	return nil
}

// Run syncs now and then every PollInterval until ctx is done, as a safety
// net beside pushed events: a delivery lost at the end of a burst has no
// successor to bring its event, and events of a type the endpoint does not
// subscribe to wake nothing. Beside that it reports the replica's checks
// to the hub every ReportInterval ([Replica.Flush]), waiting longer while
// reports fail, up to 16 intervals. It logs failures and keeps going, and
// returns ctx's error once both have stopped; checks answered after the
// last report are still queued then, for a Flush of the caller's.
func (r *Replica) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { r.reportEvery(ctx) })
	t := time.NewTicker(r.cfg.PollInterval)
	defer t.Stop()
	for {
		if err := r.Sync(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("replica sync failed; trying again later", "error", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// sync is Sync with wmu held: the replica catches up, then attests the
// erasures it made.
func (r *Replica) sync(ctx context.Context) error {
	err := r.follow(ctx)
	r.attest(ctx)
	return err
}

// follow brings the replica up to the hub's feed.
func (r *Replica) follow(ctx context.Context) error {
	if !r.bootstrapped {
		return r.bootstrap(ctx)
	}
	err := r.catchUp(ctx)
	switch {
	case errors.Is(err, client.ErrCursorExpired):
		r.log.Info("the hub no longer keeps the events missed: starting again from a snapshot", "last_applied", r.seq.Load())
		return r.bootstrap(ctx)
	case errors.Is(err, errDiverged):
		r.log.Warn("the replica diverged from the hub: starting again from a snapshot", "error", err)
		return r.bootstrap(ctx)
	}
	return err
}

// catchUp applies the feed after the replica's last sequence number, page
// by page, each page in one transaction. It asks for the feed from one
// before that number: the hub's cursor moves past a sequence number only
// once the hub has issued it, so a feed that ends before the replica's
// number shows a hub that is behind the replica (restored from an older
// backup, or a replica that once trusted a false sequence number), and
// catchUp returns errDiverged.
func (r *Replica) catchUp(ctx context.Context) error {
	last := r.seq.Load()
	from := last
	if last > 0 {
		from = last - 1
	}
	for {
		page, err := r.cfg.Client.Feed(ctx, from, r.cfg.PageSize)
		if errors.Is(err, client.ErrCursorExpired) && from < last {
			// The hub pruned the feed up to the replica's number exactly.
			from = last
			continue
		}
		if err != nil {
			return err
		}
		if !page.More && page.Next < last {
			return fmt.Errorf("%w: the hub's feed ends at sequence number %d, the replica is at %d", errDiverged, page.Next, last)
		}
		cur := r.seq.Load()
		fresh := slices.DeleteFunc(page.Events, func(e *client.Event) bool { return e.Seq <= cur })
		if len(fresh) > 0 || page.Next > cur {
			if err := r.applyEvents(fresh, max(page.Next, cur)); err != nil {
				return err
			}
		}
		if !page.More {
			return nil
		}
		from = page.Next
	}
}

// bootstrap replaces everything with the hub's snapshot, then follows the
// feed from the snapshot's sequence number.
func (r *Replica) bootstrap(ctx context.Context) error {
	fresh := newState()
	d := newDirty()
	seq, err := r.cfg.Client.WalkSnapshot(ctx, func(e *client.Event) error {
		return fresh.apply(e, d)
	})
	if err != nil {
		return fmt.Errorf("replica bootstrap: %w", err)
	}
	err = r.db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bFlags, bSusps, bPayees} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		if err := writeState(tx, fresh, d); err != nil {
			return err
		}
		meta := tx.Bucket(bMeta)
		if err := meta.Put([]byte("bootstrapped"), []byte{1}); err != nil {
			return err
		}
		return meta.Put([]byte("seq"), u64(seq))
	})
	if err != nil {
		return fmt.Errorf("replica bootstrap: %w", err)
	}
	r.mu.Lock()
	r.st = fresh
	r.seq.Store(seq)
	r.mu.Unlock()
	r.bootstrapped = true
	r.log.Info("replica loaded from the hub's snapshot", "seq", seq, "flags", len(fresh.flags), "suspicions", len(fresh.susps))
	err = r.catchUp(ctx)
	if errors.Is(err, errDiverged) {
		// Once is enough: a second divergence straight after a snapshot
		// is a fault to report, not to loop on.
		return fmt.Errorf("replica: just after a snapshot: %w", err)
	}
	return err
}

// applyEvents applies events to the index, then writes what changed and
// the new sequence number next in one transaction. If the write fails, the
// index is rebuilt from the file.
func (r *Replica) applyEvents(events []*client.Event, next uint64) error {
	d := newDirty()
	r.mu.Lock()
	var err error
	for _, e := range events {
		if err = r.st.apply(e, d); err != nil {
			break
		}
	}
	r.mu.Unlock()
	if err == nil {
		err = r.db.Update(func(tx *bolt.Tx) error {
			if err := writeState(tx, r.st, d); err != nil {
				return err
			}
			// The deletions an erasure record asks for are in this
			// transaction: from its commit on, they can be attested.
			for _, e := range events {
				if client.ErasureEvent(e.Type) {
					if err := tx.Bucket(bAttest).Put([]byte(e.Record.ID), nil); err != nil {
						return err
					}
				}
			}
			return tx.Bucket(bMeta).Put([]byte("seq"), u64(next))
		})
		if err == nil {
			r.seq.Store(next)
			return nil
		}
	}
	// The index may be ahead of the file: read it back.
	st, seq, _, lerr := r.load()
	if lerr != nil {
		return errors.Join(err, fmt.Errorf("reload the replica: %w", lerr))
	}
	r.mu.Lock()
	r.st = st
	r.seq.Store(seq)
	r.mu.Unlock()
	return err
}

// writeState writes the flags and suspicions d names: the index's current
// value, or a deletion. Keys go in sorted order into nearly full pages: the
// ids are UUIDv7s, so a bootstrap of many flags appends rather than splits.
func writeState(tx *bolt.Tx, st *state, d dirty) error {
	flags, susps := tx.Bucket(bFlags), tx.Bucket(bSusps)
	flags.FillPercent, susps.FillPercent = 0.9, 0.9
	for _, id := range slices.Sorted(maps.Keys(d.flags)) {
		if err := putOrDelete(flags, id, st.flags[id]); err != nil {
			return err
		}
	}
	for _, id := range slices.Sorted(maps.Keys(d.susps)) {
		if err := putOrDelete(susps, id, st.susps[id]); err != nil {
			return err
		}
	}
	payees := tx.Bucket(bPayees)
	for _, id := range slices.Sorted(maps.Keys(d.payees)) {
		if err := putOrDelete(payees, id, st.payees[id]); err != nil {
			return err
		}
	}
	return nil
}

func putOrDelete[T any](b *bolt.Bucket, id string, v *T) error {
	if v == nil {
		return b.Delete([]byte(id))
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(id), data)
}

func u64(n uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return b[:]
}
