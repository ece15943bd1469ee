// Package store keeps the hub's state in one bbolt file, changed only by
// applying commands ([state.Command]). A command is decided and its records
// signed before it reaches the store; applying it is deterministic and
// writes, in one transaction, the records, the state it changes, the
// indexes, the outbox rows, the exchange-log entry and the submission's
// idempotency record. [apply] is one small dispatch to one function per
// kind of command. That seam is what lets the hub replicate commands
// across nodes: two stores given the same commands in the same order hold
// the same bytes.
//
// Writes are durable before [Store.Apply] returns: the transaction is
// fsynced. Concurrent commands are committed together (group commit): while
// one transaction is being written, arriving commands queue, and the next
// transaction takes all of them, so throughput does not fall to one fsync
// per request and an idle hub adds no delay.
//
// This is the only package of the hub that imports bbolt.
package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/sparr-dev/sparr/server/state"
)

// SchemaVersion is the layout of the data file this package reads and
// writes. Version 2 added the buckets erasures, submission_times and
// usage; [Open] brings a file of version 1 to version 2.
const SchemaVersion = 2

// Errors returned by the store.
var (
	// ErrNotFound is returned by lookups for something the store does not
	// hold.
	ErrNotFound = errors.New("not found")
	// ErrSchemaTooNew is returned by [Open] for a file written by a newer
	// version of the hub.
	ErrSchemaTooNew = errors.New("data file is from a newer version of sparr")
	// ErrLocked is returned by [Open] when another process holds the file.
	ErrLocked = errors.New("data file is in use by another process")
	// ErrClosed is returned by [Store.Apply] after [Store.Close].
	ErrClosed = errors.New("store is closed")
)

// OrNil returns v and err as a lookup returned them, but nil and no error
// for [ErrNotFound]: for a caller to whom "none" is an answer, not a
// failure.
func OrNil[T any](v *T, err error) (*T, error) {
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return v, err
}

// The buckets. Keys and values are described beside each.
var (
	bMeta        = []byte("meta")        // "schema" → uint32; "log_time" → last entry time
	bMembers     = []byte("members")     // member id → api.Member JSON
	bRecords     = []byte("records")     // jti → Record JSON
	bEvents      = []byte("events")      // event seq (8 bytes) → jti
	bFlags       = []byte("flags")       // flag id → Flag JSON
	bFlagByToken = []byte("flag_token")  // token → id of its active flag
	bFlagExpiry  = []byte("flag_expiry") // expiry (8 bytes) ‖ flag id → nil, active flags
	bFlagRemind  = []byte("flag_remind") // remind-at (8 bytes) ‖ flag id → nil, active flags not yet reminded
	bSuspicions  = []byte("suspicions")  // id → Suspicion JSON
	bSuspByToken = []byte("susp_token")  // token ‖ 0 ‖ id → nil, active suspicions
	bSuspExpiry  = []byte("susp_expiry") // expiry (8 bytes) ‖ id → nil, active suspicions
	bConsents    = []byte("consents")    // consent id → consent.Record JSON
	bSubmissions = []byte("submissions") // member ‖ 0 ‖ jti → Submission JSON
	bChecks      = []byte("checks")      // check id → Check JSON
	bLog         = []byte("log")         // index (8 bytes) → entry line
	bLogDetails  = []byte("log_details") // index (8 bytes) → Details JSON (salt and details; erasable)
	bLogSubject  = []byte("log_subject") // token ‖ 0 ‖ index (8 bytes) → action, entries whose details name the token
	bEndpoints   = []byte("endpoints")   // member id → webhook.Endpoint JSON
	bRoutes      = []byte("routes")      // member id → route JSON: who gets which events, and the last one queued
	bOutbox      = []byte("outbox")      // member ‖ 0 ‖ event seq (8 bytes) → webhook.Delivery JSON
	bDead        = []byte("dead")        // member ‖ 0 ‖ event seq (8 bytes) → webhook.DeadLetter JSON
	bLogHashes   = []byte("log_hashes")  // tlog stored-hash index (8 bytes) → 32-byte hash (RFC 6962 tree)
	bCheckpoints = []byte("checkpoints") // tree size (8 bytes) → signed checkpoint note

	bErasures        = []byte("erasures")         // log index (8 bytes) → pendingErasure JSON: details erased, tombstone not yet published
	bSubmissionTimes = []byte("submission_times") // accepted at (8 bytes) ‖ member ‖ 0 ‖ jti → nil, to forget old submissions
	bUsage           = []byte("usage")            // member ‖ 0 ‖ day (YYYY-MM-DD) → usage JSON: tokens evaluated, bytes stored

	bCosignatures   = []byte("cosignatures")    // tree size (8 bytes) ‖ witness key name+hash → its signature line (tlog-cosignature)
	bNotices        = []byte("access_notices")  // check id ‖ 0 ‖ flag id → AccessNotice JSON: a check of a flagged subject
	bNoticeSubject  = []byte("notice_subject")  // token ‖ 0 ‖ check id ‖ 0 ‖ flag id → nil, the notices of a subject
	bDenials        = []byte("check_denials")   // token ‖ 0 ‖ denied at (8 bytes) ‖ check id ‖ 0 ‖ flag id → Denial JSON
	bDisputes       = []byte("disputes")        // dispute id → Dispute JSON
	bDisputeTarget  = []byte("dispute_target")  // suspicion or flag id ‖ 0 ‖ dispute id → nil, open disputes
	bDisputeSubject = []byte("dispute_subject") // token ‖ 0 ‖ dispute id → nil, disputes not erased
	bDisputeDue     = []byte("dispute_due")     // next deadline (8 bytes) ‖ dispute id → nil, open disputes with one left
	bErasureRecords = []byte("erasure_records") // record jti → ErasureRecord JSON, records members attest the erasure of
	bAttestations   = []byte("attestations")    // record jti ‖ 0 ‖ member → attested at (8 bytes)

	// appendMostly are the buckets whose keys arrive in increasing order
	// (log indexes, sequence numbers, UUIDv7 ids): their pages are split
	// nearly full rather than half full, which halves the file for them.
	appendMostly = [][]byte{bRecords, bEvents, bFlags, bSuspicions, bConsents, bChecks, bLog, bLogDetails, bLogHashes, bCheckpoints}

	allBuckets = [][]byte{bMeta, bMembers, bRecords, bEvents, bFlags, bFlagByToken, bFlagExpiry, bFlagRemind,
		bSuspicions, bSuspByToken, bSuspExpiry, bConsents, bSubmissions, bChecks, bLog, bLogDetails, bLogSubject,
		bEndpoints, bRoutes, bOutbox, bDead, bLogHashes, bCheckpoints, bErasures, bSubmissionTimes, bUsage, bCosignatures,
		bNotices, bNoticeSubject, bDenials, bPayees, bPayeeByToken, bRecalls, bRecallByToken,
		bDisputes, bDisputeTarget, bDisputeSubject, bDisputeDue, bErasureRecords, bAttestations,
		bPeers}
)

// Options tune the store. Zero values mean the defaults.
type Options struct {
	// LockTimeout is how long Open waits for another process to release
	// the file. Default 1 s.
	LockTimeout time.Duration
	// MaxBatch is the most commands committed in one transaction. Default
	// 512.
	MaxBatch int
	// InitialMmapSize is how much of the file bbolt maps at first (0: as
	// much as the file). A write that grows the file past the mapping
	// waits for every read transaction, a replicated hub's snapshot being
	// streamed among them; mapping more from the start spares it that.
	InitialMmapSize int
	// ScanChunk is the most keys a long scan (the snapshot, the exchange
	// log for audits) reads in one read transaction; it takes as many
	// short transactions as it needs. Default [DefaultScanChunk].
	ScanChunk int
}

// DefaultScanChunk is the default of Options.ScanChunk.
const DefaultScanChunk = 1024

// A Store is the hub's state in one bbolt file. It is safe for concurrent
// use.
type Store struct {
	// dbMu is held for reading while db is used, and for writing while
	// [Store.Restore] replaces the file under it.
	dbMu sync.RWMutex
	db   *bolt.DB
	opts Options

	// propose, if set, is where [Store.Apply] sends commands: a
	// replicated log, which applies them to this store through
	// [Store.ApplyEntries] once they are committed.
	propose atomic.Pointer[func(state.Command) (*Result, error)]

	queue    chan *pending
	done     chan struct{}
	onCommit atomic.Pointer[func(commands int, took time.Duration)]
	applied  atomic.Pointer[func([]state.Command)]

	closeOnce sync.Once
	mu        sync.RWMutex // held for reading while submitting to queue
	closed    bool
}

type pending struct {
	cmd    state.Command
	result *Result
	err    chan error
}

// Open opens or creates the data file at path. It refuses a file whose
// schema version is newer than [SchemaVersion].
func Open(path string, opts Options) (*Store, error) {
	if opts.LockTimeout == 0 {
		opts.LockTimeout = time.Second
	}
	if opts.MaxBatch == 0 {
		opts.MaxBatch = 512
	}
	if opts.ScanChunk <= 0 {
		opts.ScanChunk = DefaultScanChunk
	}
	db, err := openDB(path, opts)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, opts: opts, queue: make(chan *pending, opts.MaxBatch), done: make(chan struct{})}
	go s.commitLoop()
	return s, nil
}

// openDB opens the data file at path, creates the buckets it lacks and
// checks (or upgrades) its schema version.
func openDB(path string, opts Options) (*bolt.DB, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, FreelistType: bolt.FreelistMapType, InitialMmapSize: opts.InitialMmapSize})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w (is a hub running on it?)", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if err := indexRecalls(tx); err != nil {
			return err
		}
		meta := tx.Bucket(bMeta)
		v := meta.Get([]byte("schema"))
		switch {
		case v == nil:
			return meta.Put([]byte("schema"), binary.BigEndian.AppendUint32(nil, SchemaVersion))
		case len(v) != 4:
			return fmt.Errorf("schema version is %d bytes; the file is not a sparr data file", len(v))
		case binary.BigEndian.Uint32(v) > SchemaVersion:
			return fmt.Errorf("%w: it has schema version %d and this sparr reads up to %d; run a newer sparr", ErrSchemaTooNew, binary.BigEndian.Uint32(v), SchemaVersion)
		case binary.BigEndian.Uint32(v) < SchemaVersion:
			return upgrade(tx, binary.BigEndian.Uint32(v))
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// upgrade brings a file of schema version from to [SchemaVersion], in the
// transaction that opens it: version 1 lacks the index of submissions by
// time, which is built from the submissions it holds.
func upgrade(tx *bolt.Tx, from uint32) error {
	if from < 2 {
		byTime := tx.Bucket(bSubmissionTimes)
		err := tx.Bucket(bSubmissions).ForEach(func(k, v []byte) error {
			var sub state.Submission
			if err := json.Unmarshal(v, &sub); err != nil {
				return fmt.Errorf("submission %q: %w", k, err)
			}
			return byTime.Put(replayKey(sub.At, k), nil)
		})
		if err != nil {
			return fmt.Errorf("upgrade to schema version 2: %w", err)
		}
	}
	return tx.Bucket(bMeta).Put([]byte("schema"), binary.BigEndian.AppendUint32(nil, SchemaVersion))
}

// Close waits for queued commands to be committed and closes the file.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.queue)
		s.mu.Unlock()
		<-s.done
		s.dbMu.Lock()
		err = s.db.Close()
		s.dbMu.Unlock()
	})
	return err
}

// OnCommit sets a function called after each transaction with the number
// of commands it held and how long it took, fsync included (for metrics).
func (s *Store) OnCommit(fn func(commands int, took time.Duration)) { s.onCommit.Store(&fn) }

// OnApplied sets a function called after each transaction commits, with
// the commands it applied in the order applied (those that conflicted and
// wrote nothing included). Applying them in that order to another store,
// from the state this one had when fn was set, gives it the same state.
func (s *Store) OnApplied(fn func([]state.Command)) { s.applied.Store(&fn) }

// Path returns the data file's path.
func (s *Store) Path() string {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	return s.db.Path()
}

// view runs fn in a read transaction of the current file.
func (s *Store) view(fn func(*bolt.Tx) error) error {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	return s.db.View(fn)
}

// update runs fn in a write transaction of the current file.
func (s *Store) update(fn func(*bolt.Tx) error) error {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	return s.db.Update(fn)
}

// Apply applies cmd and returns once it is durable. Business outcomes (an
// existing flag, a stale version, a reused submission id) are reported in
// the Result, with nothing written for a conflict; an error means the
// command could not be applied at all.
//
// When the store is replicated ([Store.SetProposer]), Apply hands cmd to
// the replicated log and returns what applying it did once it is
// committed and applied here.
func (s *Store) Apply(cmd state.Command) (*Result, error) {
	if fn := s.propose.Load(); fn != nil {
		return (*fn)(cmd)
	}
	return s.applyLocal(cmd)
}

// applyLocal queues cmd for the commit loop and waits until it is durable.
func (s *Store) applyLocal(cmd state.Command) (*Result, error) {
	p := &pending{cmd: cmd, err: make(chan error, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	s.queue <- p
	s.mu.RUnlock()
	if err := <-p.err; err != nil {
		return nil, err
	}
	return p.result, nil
}

// commitLoop takes every queued command, applies them in one transaction,
// and answers each once it is committed.
func (s *Store) commitLoop() {
	defer close(s.done)
	for first := range s.queue {
		batch := []*pending{first}
	drain:
		for len(batch) < s.opts.MaxBatch {
			select {
			case p, ok := <-s.queue:
				if !ok {
					break drain
				}
				batch = append(batch, p)
			default:
				break drain
			}
		}
		s.commit(batch)
	}
}

// commit applies a batch in one transaction. If the transaction fails as a
// whole, each command is retried alone, so one bad command cannot fail
// others.
func (s *Store) commit(batch []*pending) {
	start := time.Now()
	err := s.update(func(tx *bolt.Tx) error {
		for _, name := range appendMostly {
			tx.Bucket(name).FillPercent = 0.95
		}
		for _, p := range batch {
			r, err := apply(tx, p.cmd)
			if err != nil {
				return err
			}
			p.result = r
		}
		return nil
	})
	if fn := s.onCommit.Load(); fn != nil {
		(*fn)(len(batch), time.Since(start))
	}
	if fn := s.applied.Load(); err == nil && fn != nil {
		cmds := make([]state.Command, len(batch))
		for i, p := range batch {
			cmds[i] = p.cmd
		}
		(*fn)(cmds)
	}
	if err == nil || len(batch) == 1 {
		for _, p := range batch {
			p.err <- err
		}
		return
	}
	for _, p := range batch {
		s.commit([]*pending{p})
	}
}

// Backup writes a consistent copy of the data file to w while the store
// stays in use (bbolt's Tx.WriteTo). Starting a hub on the copy restores it.
func (s *Store) Backup(w io.Writer) (int64, error) {
	var n int64
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// BackupFile copies the data file at path, which no hub may be using, to
// w.
func BackupFile(path string, w io.Writer) (int64, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return 0, fmt.Errorf("open %s: %w; for a hot backup of a running hub use its admin API", path, ErrLocked)
	}
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int64
	err = db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// Walk calls fn for every key of every bucket, in order, with copies of the
// key and value. Tests use it to compare whole stores.
func (s *Store) Walk(fn func(bucket string, key, value []byte) error) error {
	return s.view(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			err := tx.Bucket(name).ForEach(func(k, v []byte) error {
				return fn(string(name), bytes.Clone(k), bytes.Clone(v))
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// Sequences returns every bucket's sequence counter (log indexes, event
// sequence numbers) by bucket name. Tests use it with [Store.Walk] to
// compare whole stores.
func (s *Store) Sequences() (map[string]uint64, error) {
	out := make(map[string]uint64, len(allBuckets))
	err := s.view(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			out[string(name)] = tx.Bucket(name).Sequence()
		}
		return nil
	})
	return out, err
}

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func timeKey(t time.Time, id string) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano())), id...)
}
