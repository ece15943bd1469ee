package store

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server/state"
)

// These tests look inside the store, at bbolt's open transactions, which
// the package's API does not show.

func treeStore(t *testing.T, entries int) *Store {
	t.Helper()
	return treeStoreWith(t, entries, Options{})
}

// treeStoreWith is treeStore with options: entries notes, a second apart
// from 2026-11-21T10:00:00Z, of bank-a and bank-b in turn.
func treeStoreWith(t *testing.T, entries int, opts Options) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "hub.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	for i := range entries {
		member := []string{"bank-a", "bank-b"}[i%2]
		if _, err := s.Apply(&state.Note{Head: state.Head{At: at.Add(time.Duration(i) * time.Second), Actor: member, Entry: state.Entry{Action: protocol.LogCheck}}}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func (s *Store) openReadTxs() int { return s.db.Stats().OpenTxN }

// TestScanLogHoldsNoTransactionWhileCalling: fn, which streams to a client
// that may be slow, runs with no read transaction open, and the scan still
// sees every entry, in order, across its chunks.
func TestScanLogHoldsNoTransactionWhileCalling(t *testing.T) {
	n := 2*DefaultScanChunk + 10
	s := treeStore(t, n)
	var got []uint64
	err := s.ScanLog(LogFilter{Member: "bank-b"}, func(e *protocol.LogEntry) (bool, error) {
		if open := s.openReadTxs(); open != 0 {
			return false, fmt.Errorf("got %d read transactions open while fn runs, want 0", open)
		}
		got = append(got, e.Index)
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n/2 || got[0] != 1 || got[len(got)-1] != uint64(n-1) {
		t.Fatalf("got %d entries from %v to %v, want bank-b's %d, 1 to %d", len(got), got[0], got[len(got)-1], n/2, n-1)
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+2 {
			t.Fatalf("got entry %d after %d, want every other entry in order", got[i], got[i-1])
		}
	}
	// A time range across chunks, found by binary search, ends where it
	// should.
	from := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC).Add(1000 * time.Second)
	var in []uint64
	err = s.ScanLog(LogFilter{From: from, To: from.Add(1000 * time.Second)}, func(e *protocol.LogEntry) (bool, error) {
		in = append(in, e.Index)
		return true, nil
	})
	if err != nil || len(in) != 1000 || in[0] != 1000 || in[len(in)-1] != 1999 {
		t.Fatalf("time range: got %d entries (%v), want 1000, 1000 to 1999", len(in), err)
	}
}

// TestScanLogInChunksWhileWriting: with three entries per read
// transaction, a scan of a time range reads exactly the entries of that
// range the log held when it started, while entries are appended between
// its chunks, and LogSpan finds the same range.
func TestScanLogInChunksWhileWriting(t *testing.T) {
	s := treeStoreWith(t, 20, Options{ScanChunk: 3})
	t0 := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		f           LogFilter
		first, end  uint64
		wantEntries int
	}{
		{LogFilter{}, 0, 20, 20},
		{LogFilter{From: t0.Add(4 * time.Second), To: t0.Add(15 * time.Second)}, 4, 15, 11},
		{LogFilter{From: t0.Add(4 * time.Second), To: t0.Add(15 * time.Second), Member: "bank-b"}, 4, 15, 5},
		{LogFilter{From: t0.Add(4 * time.Second), Start: 10}, 10, 20, 10},
		{LogFilter{To: t0.Add(-time.Second)}, 0, 0, 0},
		{LogFilter{Start: 99}, 20, 20, 0},
	} {
		first, end, err := s.LogSpan(tt.f)
		if err != nil || first != tt.first || end != tt.end {
			t.Errorf("LogSpan(%+v): got [%d, %d) %v, want [%d, %d)", tt.f, first, end, err, tt.first, tt.end)
		}
		var got []uint64
		err = s.ScanLog(tt.f, func(e *protocol.LogEntry) (bool, error) {
			got = append(got, e.Index)
			return true, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tt.wantEntries || len(got) > 0 && (got[0] < tt.first || got[len(got)-1] >= tt.end) {
			t.Errorf("ScanLog(%+v): got entries %v, want %d in [%d, %d)", tt.f, got, tt.wantEntries, tt.first, tt.end)
		}
	}

	// The whole log of 20 entries in chunks of 3: at least 7 read
	// transactions, one per chunk.
	began := s.db.Stats().TxN
	if err := s.ScanLog(LogFilter{}, func(*protocol.LogEntry) (bool, error) { return true, nil }); err != nil {
		t.Fatal(err)
	}
	if n := s.db.Stats().TxN - began; n < 7 {
		t.Errorf("a scan of 20 entries in chunks of 3 took %d read transactions, want at least 7", n)
	}

	// Writes between the chunks of a scan: fn runs with no transaction
	// open, and the scan reads the entries the log held when it started.
	var got []uint64
	err := s.ScanLog(LogFilter{}, func(e *protocol.LogEntry) (bool, error) {
		if open := s.openReadTxs(); open != 0 {
			return false, fmt.Errorf("got %d read transactions open while fn runs, want 0", open)
		}
		got = append(got, e.Index)
		_, err := s.Apply(&state.Note{Head: state.Head{At: t0.Add(time.Hour), Actor: "bank-c", Entry: state.Entry{Action: protocol.LogCheck}}})
		return true, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 20 || got[19] != 19 {
		t.Errorf("got entries %v while the log grew, want the 20 it held when the scan started", got)
	}
}

// TestPublishCheckpointSignsOutsideTransactions: the signer runs with no
// transaction open, so it may take its time (or call the store), and a
// checkpoint kept for a size is never replaced.
func TestPublishCheckpointSignsOutsideTransactions(t *testing.T) {
	s := treeStore(t, 5)
	sign := func(tag string) func(uint64, tlog.Hash) ([]byte, error) {
		return func(size uint64, root tlog.Hash) ([]byte, error) {
			if open := s.openReadTxs(); open != 0 {
				return nil, fmt.Errorf("got %d read transactions open while signing, want 0", open)
			}
			return fmt.Appendf(nil, "%s %d %x", tag, size, root[:4]), nil
		}
	}
	// While the first signs, another publishes the same size: a write
	// transaction held around the signer would never let it finish.
	done := make(chan error, 1)
	var note []byte
	var size uint64
	go func() {
		var err error
		note, size, err = s.PublishCheckpoint(func(size uint64, root tlog.Hash) ([]byte, error) {
			if _, _, err := s.PublishCheckpoint(sign("inner")); err != nil {
				return nil, err
			}
			return sign("outer")(size, root)
		})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("publishing a checkpoint from the signer did not return: the signer runs inside a transaction")
	}
	if size != 5 || !bytes.HasPrefix(note, []byte("inner 5 ")) {
		t.Errorf("got checkpoint %q of size %d, want the first kept for size 5, the inner one", note, size)
	}
	if kept, err := s.CheckpointAt(5); err != nil || !bytes.Equal(kept, note) {
		t.Errorf("got %q kept for size 5 (%v), want %q", kept, err, note)
	}
	// A grown log gets a new checkpoint; the old one stays.
	if _, err := s.Apply(&state.Note{Head: state.Head{At: time.Now(), Actor: "bank-a", Entry: state.Entry{Action: protocol.LogCheck}}}); err != nil {
		t.Fatal(err)
	}
	if note, size, err := s.PublishCheckpoint(sign("later")); err != nil || size != 6 || !bytes.HasPrefix(note, []byte("later 6 ")) {
		t.Errorf("got %q of size %d (%v), want a new checkpoint of size 6", note, size, err)
	}
	if kept, err := s.CheckpointAt(5); err != nil || !bytes.HasPrefix(kept, []byte("inner 5 ")) {
		t.Errorf("got %q kept for size 5 (%v), want the first still kept", kept, err)
	}
	// A checkpoint whose root is not the tree's is refused.
	if _, err := s.Apply(&state.PutCheckpoint{Size: 4, Note: []byte("x")}); err == nil {
		t.Error("got a checkpoint of size 4 with another root kept, want it refused")
	}
}
