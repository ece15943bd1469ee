package replica

import (
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// benchFlags is how many flags BenchmarkReplicaCheck loads.
const benchFlags = 100_000

var bench struct {
	once   sync.Once
	dir    string
	rep    *Replica
	toks   []protocol.Token // flagged, in random order
	misses []protocol.Token // never flagged
	flags  map[protocol.Token]*Flag
	err    error
}

// benchToken makes the i-th token: a 64-byte value as random as a real
// one.
func benchToken(i int) protocol.Token {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	return protocol.Token{Type: protocol.TypePersonalNumber, Epoch: 1, Value: sha512.Sum512(b[:])}
}

// loadBench fills a replica with benchFlags flags, through the same path
// the feed takes, in pages of a thousand. The records are as long as real
// ones but not signed: the index trusts what the client verified.
func loadBench(b *testing.B) {
	bench.once.Do(func() {
		dir, err := os.MkdirTemp("", "sparr-replica-bench-")
		if err != nil {
			bench.err = err
			return
		}
		bench.dir = dir
		rep, err := Open(filepath.Join(dir, "bench.db"), Config{Client: unreachable(b), Now: func() time.Time { return t0 }})
		if err != nil {
			bench.err = err
			return
		}
		jws := strings.Repeat("x", 620)
		bench.flags = make(map[protocol.Token]*Flag, benchFlags)
		for start := 0; start < benchFlags; start += api.MaxFeedPage {
			var page []*client.Event
			for i := start; i < start+api.MaxFeedPage; i++ {
				e := event(uint64(i+1), placed(fmt.Sprintf("flag-%08d", i), t0.AddDate(1, 0, 0)), benchToken(i))
				e.JWS = jws
				page = append(page, e)
			}
			if err := rep.applyEvents(page, uint64(start+api.MaxFeedPage)); err != nil {
				bench.err = err
				return
			}
		}
		for i := range benchFlags {
			t := benchToken(i)
			h, _ := rep.st.lookup(t)
			bench.flags[t] = h.flag
			bench.misses = append(bench.misses, benchToken(benchFlags+i))
		}
		// Visit the flagged tokens in an order unrelated to insertion.
		for i := range benchFlags {
			bench.toks = append(bench.toks, benchToken(int((uint64(i)*2654435761)%benchFlags)))
		}
		bench.rep = rep
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
}

// TestMain removes what the benchmark loaded.
func TestMain(m *testing.M) {
	code := m.Run()
	if bench.rep != nil {
		bench.rep.Close()
	}
	if bench.dir != "" {
		os.RemoveAll(bench.dir)
	}
	os.Exit(code)
}

// emptyEvery is how many checks a benchmark lets the replica record
// before it empties the queue, as a report does.
const emptyEvery = 1024

// emptyQueue empties the queue as a report that succeeded does, but
// without the report's own work (ordering the checks, making the report,
// sending it), which runs beside the checks, not in them.
func emptyQueue(r *Replica) {
	q := &r.checks
	n := 0
	for i := range q.parts {
		p := &q.parts[i]
		p.mu.Lock()
		n += len(p.queued)
		p.queued = p.queued[:0]
		p.mu.Unlock()
	}
	q.reported.Add(uint64(n))
	q.pending.Add(-int64(n))
}

// BenchmarkReplicaCheck measures Replica.Check, as members call it (with a
// purpose; every check recorded for reporting), on a replica holding
// 100 000 flags, beside the baseline of a bare map lookup of the same
// tokens in the same run:
//
//	go test ./client/replica -run '^$' -bench ReplicaCheck -count 5
func BenchmarkReplicaCheck(b *testing.B) {
	loadBench(b)
	b.Run("baseline=map", func(b *testing.B) {
		b.ReportAllocs()
		var hits int
		for i := 0; b.Loop(); i++ {
			if bench.flags[bench.toks[i%benchFlags]] != nil {
				hits++
			}
		}
		if hits == 0 {
			b.Fatal("no hits")
		}
	})
	b.Run("flagged", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if a := bench.rep.Check(api.PurposePayment, bench.toks[i%benchFlags]); a.Advice != api.AdviceVerify {
				b.Fatalf("advice %s, want verify", a)
			}
			if i%emptyEvery == emptyEvery-1 {
				emptyQueue(bench.rep)
			}
		}
	})
	b.Run("unknown", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if a := bench.rep.Check(api.PurposePayment, bench.misses[i%benchFlags]); a.Advice != api.AdviceNone {
				b.Fatalf("advice %s, want none", a)
			}
			if i%emptyEvery == emptyEvery-1 {
				emptyQueue(bench.rep)
			}
		}
	})
	b.Run("flagged-parallel", func(b *testing.B) {
		b.ReportAllocs()
		var goroutines atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			// Each goroutine checks tokens of its own, as a member's
			// concurrent checks are of different applicants.
			i := int(goroutines.Add(1)) * 7919
			for pb.Next() {
				bench.rep.Check(api.PurposePayment, bench.toks[i%benchFlags])
				if i%emptyEvery == emptyEvery-1 {
					emptyQueue(bench.rep)
				}
				i++
			}
		})
	})
	if s := bench.rep.Stats(); s.ChecksDropped != 0 {
		b.Fatalf("%d checks dropped: the figures measure a full queue, not a check", s.ChecksDropped)
	}
}
