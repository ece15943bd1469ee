package protocol_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// FuzzParseRollback: whatever entry line is read, a rollback is accepted
// only in its one canonical form, which writes back byte for byte.
func FuzzParseRollback(f *testing.F) {
	r := protocol.Rollback{Index: 7, Reason: "INC-1_restored", OldSize: 12, NewSize: 7}
	line, err := (&protocol.LogEntry{Index: 7, Time: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC), Member: "operator", Action: protocol.LogRollbackDeclared, Result: "ok", Attrs: r.Attrs()}).Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(line)
	f.Add(bytes.Replace(line, []byte("new_size=7"), []byte("new_size=6"), 1))
	f.Add(bytes.Replace(line, []byte("old_size=12"), []byte("old_size=012"), 1))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := protocol.ParseLogEntry(line)
		if err != nil {
			return
		}
		r, err := protocol.ParseRollback(e)
		if err != nil {
			if !errors.Is(err, protocol.ErrRollback) {
				t.Fatalf("error %v is not ErrRollback", err)
			}
			return
		}
		again, err := (&protocol.LogEntry{Index: e.Index, Time: e.Time, Member: e.Member, Action: e.Action, Result: e.Result, Commitment: e.Commitment, Attrs: r.Attrs()}).Marshal()
		if err != nil || r.NewSize != e.Index {
			t.Fatalf("accepted %q as %+v, which does not write back: %v", line, r, err)
		}
		if back, err := protocol.ParseLogEntry(again); err != nil || len(back.Attrs) != len(e.Attrs) {
			t.Fatalf("accepted %q as %+v, which writes back as %q", line, r, again)
		}
	})
}

// restoredLog is log cut back to its first n entries, as a hub restored
// from a backup holds it, then (with declare) the declared rollback of
// the whole of log, then grown to size entries.
func restoredLog(t *testing.T, log *memLog, n int, declare *protocol.Rollback, size int) *memLog {
	t.Helper()
	m := &memLog{signer: log.signer}
	for _, line := range log.lines[:n] {
		e, err := protocol.ParseLogEntry(line)
		if err != nil {
			t.Fatal(err)
		}
		m.append(t, *e)
	}
	at := vectorTime.Add(time.Hour)
	if declare != nil {
		m.append(t, protocol.LogEntry{Time: at, Member: "operator", Action: protocol.LogRollbackDeclared, Result: "ok", Attrs: declare.Attrs()})
	}
	for len(m.lines) < size {
		m.append(t, protocol.LogEntry{Time: at, Member: "bank-a", Action: protocol.LogCheck, Result: "ok"})
	}
	return m
}

// TestVerifyDeclaredRollback: a regulator whose kept checkpoint a restore
// gave up passes only with a declared rollback that covers it; one whose
// checkpoint the restore kept sees the rollback among the new entries.
func TestVerifyDeclaredRollback(t *testing.T) {
	signer, verifier, _ := logKeys(t, "rollback")
	old := sampleLog(t, signer, 20)
	ctx := context.Background()
	stateAt := func(t *testing.T, size int) *protocol.LogState {
		t.Helper()
		m := &memLog{signer: signer, lines: old.lines[:size], hashes: old.hashes}
		st, _, err := (&protocol.LogAuditor{Fetcher: memFetcher{t, m}, Key: verifier}).Verify(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	oldCP, err := protocol.OpenCheckpoint(old.checkpointAt(t, 20), verifier)
	if err != nil {
		t.Fatal(err)
	}
	declared := &protocol.Rollback{Index: 12, Reason: "INC-4711_restored", OldSize: 20, OldRoot: oldCP.Root, NewSize: 12}
	short := *declared
	short.OldSize = 18 // a declaration that does not reach the kept checkpoint
	for _, tt := range []struct {
		name    string
		kept    int
		declare *protocol.Rollback
		size    int
		want    error // nil: verified
		covered bool  // the report names the rollback as the one that gave up the kept checkpoint
	}{
		{"declared, grown past the old size", 20, declared, 25, nil, true},
		{"declared, same size, other root", 20, declared, 20, nil, true},
		{"declared, smaller", 20, declared, 15, nil, true},
		{"kept before the restored part", 10, declared, 25, nil, false},
		{"undeclared, grown", 20, nil, 25, protocol.ErrLogInconsistent, false},
		{"undeclared, smaller", 20, nil, 15, protocol.ErrLogTruncated, false},
		{"declaration short of the kept checkpoint", 20, &short, 25, protocol.ErrLogInconsistent, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := restoredLog(t, old, 12, tt.declare, tt.size)
			_, report, err := (&protocol.LogAuditor{Fetcher: memFetcher{t, m}, Key: verifier}).Verify(ctx, stateAt(t, tt.kept))
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if err != nil {
				return
			}
			if len(report.Rollbacks) != 1 || *report.Rollbacks[0] != *tt.declare {
				t.Errorf("rollbacks: got %v, want %v", report.Rollbacks, tt.declare)
			}
			if (report.Declared != nil) != tt.covered || tt.covered && !report.Full {
				t.Errorf("got Declared %v, Full %v; want the rollback named %v, with every entry checked", report.Declared, report.Full, tt.covered)
			}
		})
	}
}

func TestRollbackReason(t *testing.T) {
	for in, want := range map[string]string{
		"INC-4711 disk lost, restored 02:00 backup":  "",
		"INC-4711  disk lost: restored 02.00 backup": "INC-4711_disk_lost:_restored_02.00_backup",
		"  x ":             "x",
		"":                 "",
		"diskfel på nod 2": "",
		"a/b":              "",
	} {
		got, err := protocol.RollbackReason(in)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("RollbackReason(%q): got %q, %v; want %q", in, got, err, want)
		}
	}
}
