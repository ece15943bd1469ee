package protocol_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sparr-dev/sparr/protocol"
)

// A memLog is an exchange log held in memory, built with tlog's stored
// hashes exactly as the hub builds its own: the source the auditor is
// tested against here (the server's tests run it against a real hub).
type memLog struct {
	lines  [][]byte
	hashes []tlog.Hash
	signer note.Signer
	// serve, if set, replaces what Entries returns, to play a lying hub.
	serve func(lines [][]byte) [][]byte
	// sizeOverride, if set, is the size the next checkpoint claims.
	sizeOverride uint64
}

func (m *memLog) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		out[i] = m.hashes[x]
	}
	return out, nil
}

func (m *memLog) append(t testing.TB, e protocol.LogEntry) {
	t.Helper()
	e.Index = uint64(len(m.lines))
	line, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	hs, err := tlog.StoredHashes(int64(len(m.lines)), line, m)
	if err != nil {
		t.Fatal(err)
	}
	m.hashes = append(m.hashes, hs...)
	m.lines = append(m.lines, line)
}

func (m *memLog) checkpointAt(t testing.TB, size uint64) []byte {
	t.Helper()
	root := protocol.EmptyRoot()
	if size > 0 {
		var err error
		if root, err = tlog.TreeHash(int64(size), m); err != nil {
			t.Fatal(err)
		}
	}
	msg, err := protocol.SignCheckpoint(&protocol.Checkpoint{Origin: m.signer.Name(), Size: size, Root: root}, m.signer)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

type memFetcher struct {
	t   testing.TB
	log *memLog
}

func (f memFetcher) Checkpoint(context.Context) ([]byte, error) {
	size := uint64(len(f.log.lines))
	if f.log.sizeOverride != 0 {
		size = f.log.sizeOverride
	}
	return f.log.checkpointAt(f.t, size), nil
}

func (f memFetcher) Entries(_ context.Context, start, end uint64) ([][]byte, error) {
	lines := f.log.lines
	if f.log.serve != nil {
		lines = f.log.serve(lines)
	}
	end = min(end, uint64(len(lines)), start+7) // short pages, as a hub may send
	if start >= end {
		return nil, nil
	}
	return lines[start:end], nil
}

func (f memFetcher) ConsistencyProof(_ context.Context, old, new uint64) (tlog.TreeProof, error) {
	return tlog.ProveTree(int64(new), int64(old), f.log)
}

// seedReader is a deterministic source of bytes for keys in vectors.
type seedReader struct{ state [32]byte }

func (r *seedReader) Read(p []byte) (int, error) {
	for i := range p {
		if i%32 == 0 {
			r.state = sha256.Sum256(r.state[:])
		}
		p[i] = r.state[i%32]
	}
	return len(p), nil
}

func logKeys(t testing.TB, label string) (note.Signer, note.Verifier, string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(&seedReader{state: sha256.Sum256([]byte(label))}, "log.hub.example/sparr")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return signer, verifier, vkey
}

// sampleLog is a small log with every kind of entry: writes, checks, a
// delivery, an erasure tombstone.
func sampleLog(t testing.TB, signer note.Signer, n int) *memLog {
	m := &memLog{signer: signer}
	actions := []protocol.LogAction{protocol.LogMemberAdded, protocol.LogTokens, protocol.LogFlagPlaced, protocol.LogDelivery, protocol.LogCheck, protocol.LogFlagLifted, protocol.LogErased, protocol.LogCheckOutcome}
	for i := range n {
		e := protocol.LogEntry{Time: vectorTime.Add(time.Duration(i) * 137 * time.Millisecond), Member: fmt.Sprintf("bank-%c", 'a'+i%3), Action: actions[i%len(actions)], Result: "ok"}
		switch e.Action {
		case "flag-placed", "flag-lifted", "check":
			e.Commitment = protocol.LogCommitment([]byte(fmt.Sprint("salt", i)), []byte(fmt.Sprint("details", i)))
		case LogErased:
			e.Member = "hub"
			e.Attrs = []protocol.LogAttr{{Key: "index", Value: fmt.Sprint(i - 4)}, {Key: "basis", Value: "consent-withdrawn"}}
		case "delivery":
			e.Attrs = []protocol.LogAttr{{Key: "event", Value: fmt.Sprint(i)}, {Key: "attempts", Value: "1"}, {Key: "latency_ms", Value: "3"}}
		}
		m.append(t, e)
	}
	return m
}

const LogErased = protocol.LogErased

func TestFrontierMatchesTreeHash(t *testing.T) {
	signer, _, _ := logKeys(t, "frontier")
	m := sampleLog(t, signer, 300)
	f := &protocol.Frontier{}
	if f.Root() != protocol.EmptyRoot() {
		t.Fatal("empty frontier root is not SHA-256 of nothing")
	}
	for i, l := range m.lines {
		f.Append(l)
		want, err := tlog.TreeHash(int64(i+1), m)
		if err != nil {
			t.Fatal(err)
		}
		if f.Root() != want {
			t.Fatalf("size %d: frontier root %x, tree hash %x", i+1, f.Root(), want)
		}
	}
}

func TestLogAuditor(t *testing.T) {
	signer, verifier, _ := logKeys(t, "auditor")
	m := sampleLog(t, signer, 40)
	a := &protocol.LogAuditor{Fetcher: memFetcher{t, m}, Key: verifier, Page: 5}

	// First run: trust on first use.
	state, report, err := a.Verify(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if report.Old != nil || report.New.Size != 40 || report.Entries != 40 || report.Tombstones != 5 {
		t.Errorf("first run: %+v, want 40 new entries and 5 tombstones, no old checkpoint", report)
	}
	// Nothing new: nothing to download.
	if _, report, err = a.Verify(ctx, state); err != nil || report.Entries != 0 {
		t.Fatalf("second run: %+v, %v", report, err)
	}
	// The log grows: only the new entries are checked.
	for range 30 {
		m.append(t, protocol.LogEntry{Time: vectorTime.Add(time.Hour), Member: "bank-b", Action: protocol.LogCheck, Result: "ok"})
	}
	state2, report, err := a.Verify(ctx, state)
	if err != nil {
		t.Fatal(err)
	}
	if report.Old.Size != 40 || report.New.Size != 70 || report.Entries != 30 {
		t.Errorf("third run: %+v, want entries 40..69 checked", report)
	}
	if state2.Frontier.Size != 70 {
		t.Errorf("state frontier size %d, want 70", state2.Frontier.Size)
	}
	// A full run checks the whole log again, and says which counts are of
	// what: checked the whole log, added only the new entries.
	for range 5 {
		m.append(t, protocol.LogEntry{Time: vectorTime.Add(2 * time.Hour), Member: "bank-c", Action: protocol.LogCheck, Result: "ok"})
	}
	full := &protocol.LogAuditor{Fetcher: memFetcher{t, m}, Key: verifier, Page: 5, Full: true}
	if _, report, err = full.Verify(ctx, state2); err != nil {
		t.Fatal(err)
	}
	if !report.Full || report.Added != 5 || report.Entries != 75 || report.Tombstones != 5 || report.Actions["check"] != 5+30+5 {
		t.Errorf("full run: got full=%v added=%d entries=%d tombstones=%d checks=%d, want full, 5 added, 75 checked, 5 tombstones, 40 checks",
			report.Full, report.Added, report.Entries, report.Tombstones, report.Actions["check"])
	}
}

// failingFetcher fails every request, as an unreachable hub does.
type failingFetcher struct{ err error }

func (f failingFetcher) Checkpoint(context.Context) ([]byte, error) { return nil, f.err }
func (f failingFetcher) Entries(context.Context, uint64, uint64) ([][]byte, error) {
	return nil, f.err
}
func (f failingFetcher) ConsistencyProof(context.Context, uint64, uint64) (tlog.TreeProof, error) {
	return nil, f.err
}

// entriesFailing serves a log's checkpoints and proofs, but no entries.
type entriesFailing struct {
	memFetcher
	err error
}

func (f entriesFailing) Entries(context.Context, uint64, uint64) ([][]byte, error) {
	return nil, f.err
}

// TestLogAuditorCouldNotCheck: a failure to fetch is a FetchError, never
// evidence against the log; a state of another log is ErrLogState.
func TestLogAuditorCouldNotCheck(t *testing.T) {
	signer, verifier, _ := logKeys(t, "unreachable")
	m := sampleLog(t, signer, 20)
	state, _, err := (&protocol.LogAuditor{Fetcher: memFetcher{t, m}, Key: verifier}).Verify(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.append(t, protocol.LogEntry{Time: vectorTime.Add(time.Hour), Member: "bank-a", Action: protocol.LogCheck, Result: "ok"})
	down := errors.New("connection refused")
	for name, f := range map[string]protocol.LogFetcher{
		"checkpoint": failingFetcher{down},
		"entries":    entriesFailing{memFetcher{t, m}, down},
	} {
		_, _, err := (&protocol.LogAuditor{Fetcher: f, Key: verifier}).Verify(ctx, state)
		var fe *protocol.FetchError
		var ee *protocol.EntryError
		var ce *protocol.CheckpointError
		if !errors.As(err, &fe) || !errors.Is(err, down) || errors.As(err, &ee) || errors.As(err, &ce) {
			t.Errorf("%s failing: got %v (%T), want a FetchError wrapping the cause and no evidence", name, err, err)
		}
	}
	_, otherKey, _ := logKeys(t, "another log")
	_, _, err = (&protocol.LogAuditor{Fetcher: memFetcher{t, m}, Key: otherKey}).Verify(ctx, state)
	var ce *protocol.CheckpointError
	if !errors.Is(err, protocol.ErrCheckpointSignature) || !errors.As(err, &ce) {
		t.Fatalf("another key: got %v, want the served checkpoint refused", err)
	}
	// The served checkpoint refused first; with a matching key but a
	// state of another log, the state is what is refused.
	other := sampleLog(t, func() note.Signer { s, _, _ := logKeys(t, "another log"); return s }(), 3)
	_, _, err = (&protocol.LogAuditor{Fetcher: memFetcher{t, other}, Key: otherKey}).Verify(ctx, state)
	if !errors.Is(err, protocol.ErrLogState) || errors.As(err, &ce) {
		t.Errorf("a state of another log: got %v, want ErrLogState, not a CheckpointError", err)
	}
}

func TestLogAuditorCatchesTampering(t *testing.T) {
	signer, verifier, _ := logKeys(t, "tamper")
	otherSigner, _, _ := logKeys(t, "another key")
	fresh := func() (*memLog, *protocol.LogState) {
		m := sampleLog(t, signer, 10000)
		state, _, err := (&protocol.LogAuditor{Fetcher: memFetcher{t, m}, Key: verifier}).Verify(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		return m, state
	}
	grow := func(m *memLog, n int) {
		for range n {
			m.append(t, protocol.LogEntry{Time: vectorTime.Add(time.Hour), Member: "bank-c", Action: protocol.LogCheck, Result: "ok"})
		}
	}

	t.Run("entry edited", func(t *testing.T) {
		m, state := fresh()
		grow(m, 5000)
		edited := 12345
		m.serve = func(lines [][]byte) [][]byte {
			out := append([][]byte(nil), lines...)
			out[edited] = bytes.Replace(out[edited], []byte("bank-c"), []byte("bank-x"), 1)
			return out
		}
		_, _, err := (&protocol.LogAuditor{Fetcher: memFetcher{t, m}, Key: verifier}).Verify(ctx, state)
		var ee *protocol.EntryError
		if !errors.Is(err, protocol.ErrLogRootMismatch) || !errors.As(err, &ee) || ee.Index != uint64(edited) {
			t.Fatalf("got %v, want ErrLogRootMismatch at entry %d", err, edited)
		}
		if !bytes.Contains(ee.Entry, []byte("bank-x")) || ee.Checkpoint == nil || ee.Checkpoint.Note == nil {
			t.Errorf("evidence %+v lacks the entry or the checkpoint", ee)
		}
		if ee.Earlier == nil || !bytes.Equal(ee.Earlier.Note, state.Checkpoint) || ee.Checkpoint.Size != 15000 {
			t.Errorf("evidence: got earlier checkpoint %v and latest %v, want the kept one (size 10000) and the new (15000)", ee.Earlier, ee.Checkpoint)
		}
	})
	t.Run("log truncated", func(t *testing.T) {
		m, state := fresh()
		m.lines, m.hashes = m.lines[:9000], m.hashes[:tlog.StoredHashCount(9000)]
		_, _, err := (&protocol.LogAuditor{Fetcher: memFetcher{t, m}, Key: verifier}).Verify(ctx, state)
		var ie *protocol.InconsistencyError
		if !errors.Is(err, protocol.ErrLogTruncated) || !errors.As(err, &ie) || ie.Old.Size != 10000 || ie.New.Size != 9000 {
			t.Fatalf("got %v, want ErrLogTruncated with both checkpoints", err)
		}
	})
	t.Run("entry removed", func(t *testing.T) {
		m, state := fresh()
		grow(m, 100)
		m.serve = func(lines [][]byte) [][]byte {
			return append(append([][]byte(nil), lines[:10050]...), lines[10051:]...)
		}
		_, _, err := (&protocol.LogAuditor{Fetcher: memFetcher{t, m}, Key: verifier}).Verify(ctx, state)
		var ee *protocol.EntryError
		if !errors.Is(err, protocol.ErrLogEntryMissing) || !errors.As(err, &ee) || ee.Index != 10050 {
			t.Fatalf("got %v, want ErrLogEntryMissing at 10050", err)
		}
	})
	t.Run("forked tree", func(t *testing.T) {
		m, state := fresh()
		// Rewrite history: a log whose first entries differ, grown past
		// the old size, signed by the same key.
		fork := &memLog{signer: signer}
		first, _ := protocol.ParseLogEntry(m.lines[0])
		first.Member = "bank-z"
		fork.append(t, *first)
		for _, l := range m.lines[1:] {
			e, _ := protocol.ParseLogEntry(l)
			fork.append(t, *e)
		}
		grow(fork, 10)
		_, _, err := (&protocol.LogAuditor{Fetcher: memFetcher{t, fork}, Key: verifier}).Verify(ctx, state)
		var ie *protocol.InconsistencyError
		if !errors.Is(err, protocol.ErrLogInconsistent) || !errors.As(err, &ie) || ie.Proof == nil {
			t.Fatalf("got %v, want ErrLogInconsistent with the failing proof", err)
		}
	})
	t.Run("signed by another key", func(t *testing.T) {
		m, state := fresh()
		m.signer = otherSigner
		served, _ := memFetcher{t, m}.Checkpoint(ctx)
		_, _, err := (&protocol.LogAuditor{Fetcher: memFetcher{t, m}, Key: verifier}).Verify(ctx, state)
		var ce *protocol.CheckpointError
		if !errors.Is(err, protocol.ErrCheckpointSignature) || !errors.As(err, &ce) {
			t.Fatalf("got %v, want a CheckpointError matching ErrCheckpointSignature", err)
		}
		if !bytes.Equal(ce.Note, served) || ce.Key != verifier.Name() {
			t.Errorf("evidence: got note %q checked against %q, want the note as served %q and the pinned key's name", ce.Note, ce.Key, served)
		}
	})
	t.Run("time going backwards", func(t *testing.T) {
		m, state := fresh()
		m.append(t, protocol.LogEntry{Time: vectorTime.Add(-time.Hour), Member: "bank-a", Action: protocol.LogCheck, Result: "ok"})
		_, _, err := (&protocol.LogAuditor{Fetcher: memFetcher{t, m}, Key: verifier}).Verify(ctx, state)
		var ee *protocol.EntryError
		if !errors.Is(err, protocol.ErrLogTimeBackwards) || !errors.As(err, &ee) || ee.Index != 10000 {
			t.Fatalf("got %v, want ErrLogTimeBackwards at 10000", err)
		}
	})
	t.Run("tombstone naming nothing", func(t *testing.T) {
		m, state := fresh()
		m.append(t, protocol.LogEntry{Time: vectorTime.Add(time.Hour), Member: "hub", Action: LogErased, Result: "ok",
			Attrs: []protocol.LogAttr{{Key: "index", Value: "10000"}, {Key: "basis", Value: "consent-withdrawn"}}})
		_, _, err := (&protocol.LogAuditor{Fetcher: memFetcher{t, m}, Key: verifier}).Verify(ctx, state)
		if !errors.Is(err, protocol.ErrLogBadTombstone) {
			t.Fatalf("got %v, want ErrLogBadTombstone", err)
		}
	})
}

func TestParseCheckpoint(t *testing.T) {
	root := base64.StdEncoding.EncodeToString(make([]byte, 32))
	for _, tt := range []struct {
		text string
		ok   bool
	}{
		{"log.example/x\n12\n" + root + "\n", true},
		{"log.example/x\n12\n" + root + "\next line\n", true},
		{"log.example/x\n12\n" + root, false},
		{"log.example/x\n012\n" + root + "\n", false},
		{"log.example/x\n-1\n" + root + "\n", false},
		{"log.example/x\n12\n" + root[:40] + "\n", false},
		{"log example\n12\n" + root + "\n", false},
		{"\n12\n" + root + "\n", false},
		{"log.example/x\n12\n" + root + "\n\n", false},
	} {
		if _, err := protocol.ParseCheckpoint([]byte(tt.text)); (err == nil) != tt.ok {
			t.Errorf("ParseCheckpoint(%q): got %v, want ok=%v", tt.text, err, tt.ok)
		}
	}
}

func FuzzParseCheckpoint(f *testing.F) {
	signer, verifier, _ := logKeys(f, "fuzz")
	m := sampleLog(f, signer, 9)
	f.Add(m.checkpointAt(f, 9))
	f.Add([]byte("log.hub.example/sparr\n9\n" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if c, err := protocol.ParseCheckpoint(data); err == nil {
			back, err := protocol.ParseCheckpoint(c.Text())
			if err != nil || back.Size != c.Size || back.Root != c.Root || back.Origin != c.Origin {
				t.Fatalf("reparse of %q: %+v, %v", c.Text(), back, err)
			}
		}
		if c, err := protocol.OpenCheckpoint(data, verifier); err == nil && c.Origin != verifier.Name() {
			t.Fatalf("opened a checkpoint of %q with the key of %q", c.Origin, verifier.Name())
		}
	})
}

// ExampleLogAuditor shows a regulator's check of a log it has never seen
// (trust on first use), then of the same log grown.
func ExampleLogAuditor() {
	signer, verifier, _ := logKeys(exampleT{}, "example")
	log := sampleLog(exampleT{}, signer, 10)
	auditor := &protocol.LogAuditor{Fetcher: memFetcher{exampleT{}, log}, Key: verifier}
	state, report, err := auditor.Verify(context.Background(), nil)
	if err != nil {
		panic(err)
	}
	fmt.Println("first run:", report.New.Size, "entries,", report.Tombstones, "tombstone")
	log.append(exampleT{}, protocol.LogEntry{Time: vectorTime.Add(time.Hour), Member: "bank-a", Action: protocol.LogCheck, Result: "ok"})
	_, report, err = auditor.Verify(context.Background(), state)
	fmt.Println("second run:", report.Old.Size, "→", report.New.Size, err)
	// Output:
	// first run: 10 entries, 1 tombstone
	// second run: 10 → 11 <nil>
}

// exampleT is the testing.TB examples do not have.
type exampleT struct{ testing.TB }

func (exampleT) Helper()                   {}
func (exampleT) Fatal(args ...any)         { panic(fmt.Sprint(args...)) }
func (exampleT) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }
