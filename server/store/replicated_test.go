package store_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

func repNote(i int) state.Command {
	return &state.Note{Head: state.Head{At: time.Unix(1700000000+int64(i), 0).UTC(), Actor: "bank-a", Entry: state.Entry{Action: protocol.LogCheck}}}
}

// TestApplyEntriesSkipsWhatWasApplied: the applied index is recorded with
// the commands, and entries at or below it change nothing.
func TestApplyEntriesSkipsWhatWasApplied(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "hub.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	outs := st.ApplyEntries([]store.Entry{{Index: 1}, {Index: 2, Command: repNote(2)}, {Index: 3, Command: repNote(3)}})
	for i, o := range outs {
		if o.Err != nil {
			t.Fatalf("entry %d: %v", i+1, o.Err)
		}
	}
	if n, _ := st.AppliedIndex(); n != 3 {
		t.Fatalf("got applied index %d, want 3", n)
	}
	size, _ := st.LogSize()
	outs = st.ApplyEntries([]store.Entry{{Index: 2, Command: repNote(2)}, {Index: 3, Command: repNote(3)}, {Index: 4, Command: repNote(4)}})
	if !errors.Is(outs[0].Err, store.ErrApplied) || !errors.Is(outs[1].Err, store.ErrApplied) || outs[2].Err != nil || outs[2].Result == nil {
		t.Fatalf("replaying 2..4 after 3: got %+v, want 2 and 3 skipped, 4 applied", outs)
	}
	if again, _ := st.LogSize(); again != size+1 {
		t.Errorf("got %d log entries after the replay, want %d: only entry 4's", again, size+1)
	}
	if n, _ := st.AppliedIndex(); n != 4 {
		t.Errorf("got applied index %d, want 4", n)
	}
}

// TestRestoreReplacesTheFile: a snapshot taken while commands go on,
// restored, gives the store the snapshot's state, and the store stays in
// use.
func TestRestoreReplacesTheFile(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "hub.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.ApplyEntries([]store.Entry{{Index: 1, Command: repNote(1)}, {Index: 2, Command: repNote(2)}})
	sn, err := st.SnapshotFile()
	if err != nil {
		t.Fatal(err)
	}
	// Commands go on being applied while the snapshot is written (a
	// write that grows the file waits for the snapshot's read
	// transaction to end, as bbolt remaps the file).
	applied := make(chan []store.Outcome)
	go func() { applied <- st.ApplyEntries([]store.Entry{{Index: 3, Command: repNote(3)}}) }()
	var buf bytes.Buffer
	if _, err := sn.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if sn.AppliedIndex() != 2 {
		t.Errorf("got a snapshot of index %d, want 2", sn.AppliedIndex())
	}
	sn.Close()
	if outs := <-applied; outs[0].Err != nil {
		t.Fatal(outs[0].Err)
	}
	if err := st.Restore(&buf); err != nil {
		t.Fatal(err)
	}
	if n, _ := st.AppliedIndex(); n != 2 {
		t.Errorf("after the restore: applied index %d, want the snapshot's 2", n)
	}
	if size, _ := st.LogSize(); size != 2 {
		t.Errorf("after the restore: %d log entries, want 2", size)
	}
	if outs := st.ApplyEntries([]store.Entry{{Index: 3, Command: repNote(3)}}); outs[0].Err != nil {
		t.Errorf("applying after the restore: %v", outs[0].Err)
	}
	if err := st.Restore(bytes.NewReader([]byte("not a data file"))); err == nil {
		t.Error("restoring garbage: got no error")
	}
	if size, _ := st.LogSize(); size != 3 {
		t.Errorf("after a refused restore: %d log entries, want 3", size)
	}
}
