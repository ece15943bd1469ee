package server_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// TestRestoreFromAnOlderBackup: a hub whose hub.db is replaced by a backup
// older than its last checkpoint refuses to start, and changes nothing;
// with the rollback declared it starts, logs the declaration as the first
// entry after the backup's log, and signs a checkpoint covering it; then
// it starts as usual, and refuses a declaration with nothing to declare.
func TestRestoreFromAnOlderBackup(t *testing.T) {
	var declare string
	hub := hubtest.Start(t, hubtest.Options{LastCheckpoint: true, Configure: func(c *server.Config) { c.DeclareRollback = declare }})
	last := filepath.Join(hub.Dir, "last-checkpoint")
	hub.AddMember(t, "bank-a", api.RoleFlag)
	publish(t, hub)
	backup := filepath.Join(t.TempDir(), "backup.db")
	hub.Offline(t, func(path string) { copyTo(t, path, backup) })
	backupSize := logSize(t, hub)
	hub.AddMember(t, "bank-b", api.RoleFlag)
	hub.AddMember(t, "bank-c", api.RoleFlag)
	signed := publish(t, hub)
	if kept, _ := os.ReadFile(last); !bytes.Equal(kept, signed.Note) {
		t.Fatalf("%s holds %q, want the checkpoint just signed, %q", last, kept, signed.Note)
	}

	err := hub.TryOffline(t, func(path string) { copyTo(t, backup, path) })
	var te *server.TreeError
	if !errors.Is(err, server.ErrRollback) || !errors.As(err, &te) || te.Checkpoint.Size != signed.Size || te.Size != backupSize {
		t.Fatalf("start on the older backup: got %v, want ErrRollback against the checkpoint of %d, with the backup's %d entries", err, signed.Size, backupSize)
	}
	if got, want := fileContents(t, filepath.Join(hub.Dir, "hub.db")), fileContents(t, backup); !maps.Equal(got, want) {
		t.Error("the refused start changed what hub.db holds")
	}
	if kept := read(t, last); !bytes.Equal(kept, signed.Note) {
		t.Errorf("the refused start changed %s to %q", last, kept)
	}

	declare = "INC-4711 disk lost: restored 02:00 backup"
	if err := hub.TryOffline(t, func(string) {}); err != nil {
		t.Fatalf("start with the rollback declared: %v", err)
	}
	lines, err := hub.Store.LogEntries(backupSize, backupSize+1)
	if err != nil || len(lines) != 1 {
		t.Fatalf("entry %d: %v, %d lines", backupSize, err, len(lines))
	}
	e, err := protocol.ParseLogEntry(lines[0])
	if err != nil {
		t.Fatal(err)
	}
	r, err := protocol.ParseRollback(e)
	if err != nil {
		t.Fatalf("entry %d, %q: %v", backupSize, lines[0], err)
	}
	want := protocol.Rollback{Index: backupSize, Reason: "INC-4711_disk_lost:_restored_02:00_backup", OldSize: signed.Size, OldRoot: signed.Root, NewSize: backupSize}
	if e.Member != server.OperatorID || *r != want {
		t.Errorf("got %s by %s, want %+v by the operator", r, e.Member, want)
	}
	now := latest(t, hub)
	if now.Size != backupSize+1 {
		t.Errorf("the checkpoint after the declaration has %d entries, want %d: the declaration and the backup's log", now.Size, backupSize+1)
	}
	if kept := read(t, last); !bytes.Equal(kept, now.Note) {
		t.Errorf("%s holds %q, want the checkpoint after the declaration %q", last, kept, now.Note)
	}

	// Declared once: again, there is nothing to declare.
	if err := hub.TryOffline(t, func(string) {}); !errors.Is(err, server.ErrNothingToDeclare) {
		t.Errorf("a second declaration: got %v, want ErrNothingToDeclare", err)
	}
	declare = ""
	hub.Offline(t, func(string) {})
	hub.AddMember(t, "bank-d", api.RoleFlag)
	if c := publish(t, hub); c.Size <= now.Size {
		t.Errorf("after a normal restart the log did not grow: %d entries", c.Size)
	}
}

// TestRefusesATruncatedLog: entries removed from the end of the log, with
// or without the checkpoints that cover them, and another hub's data file:
// the hub refuses each, whether or not it keeps a last checkpoint file,
// and starts again once the file is put back.
func TestRefusesATruncatedLog(t *testing.T) {
	for _, tt := range []struct {
		name     string
		keep     bool  // the hub keeps its last checkpoint file
		dropCPs  bool  // the checkpoints covering the removed entries go too
		other    bool  // another hub's data file instead
		want     error // what New returns
		whatFrom string
	}{
		{name: "checkpoints kept", want: server.ErrTreeDamaged},
		{name: "checkpoints kept, last checkpoint file", keep: true, want: server.ErrTreeDamaged},
		{name: "checkpoints dropped, last checkpoint file", keep: true, dropCPs: true, want: server.ErrRollback},
		{name: "another hub's file", other: true, want: server.ErrTreeDamaged},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hub := hubtest.Start(t, hubtest.Options{LastCheckpoint: tt.keep})
			hub.AddMember(t, "bank-a", api.RoleFlag)
			hub.AddMember(t, "bank-b", api.RoleFlag)
			publish(t, hub)
			good := filepath.Join(t.TempDir(), "good.db")
			var err error
			if tt.other {
				other := hubtest.Start(t, hubtest.Options{})
				other.AddMember(t, "bank-a", api.RoleFlag)
				publish(t, other)
				otherDB := filepath.Join(t.TempDir(), "other.db")
				other.Offline(t, func(path string) { copyTo(t, path, otherDB) })
				err = hub.TryOffline(t, func(path string) { copyTo(t, path, good); copyTo(t, otherDB, path) })
			} else {
				err = hub.TryOffline(t, func(path string) { copyTo(t, path, good); truncateLog(t, path, 2, tt.dropCPs) })
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("start: got %v, want %v", err, tt.want)
			}
			hub.Offline(t, func(path string) { copyTo(t, good, path) })
		})
	}
}

// TestRefusesARewrittenLog: a data file whose log is as long as the last
// checkpoint signed, or longer, but with other entries, is not an older
// copy of the log: the hub refuses it, declared or not.
func TestRefusesARewrittenLog(t *testing.T) {
	var declare string
	hub := hubtest.Start(t, hubtest.Options{LastCheckpoint: true, Configure: func(c *server.Config) { c.DeclareRollback = declare }})
	last := filepath.Join(hub.Dir, "last-checkpoint")
	publish(t, hub)
	backup := filepath.Join(t.TempDir(), "backup.db")
	hub.Offline(t, func(path string) { copyTo(t, path, backup) })
	hub.AddMember(t, "bank-a", api.RoleFlag)
	signed := publish(t, hub)
	kept := read(t, last)
	// The backup grown apart, by a hub that lost the last checkpoint
	// file, past the size of the last checkpoint signed.
	hub.Offline(t, func(path string) {
		copyTo(t, backup, path)
		if err := os.Remove(last); err != nil {
			t.Fatal(err)
		}
	})
	hub.AddMember(t, "bank-b", api.RoleCheck)
	hub.AddMember(t, "bank-c", api.RoleCheck)
	if c := publish(t, hub); c.Size < signed.Size || c.Root == signed.Root {
		t.Fatalf("the log grown apart has %d entries; want at least %d, and another root", c.Size, signed.Size)
	}
	for _, declare = range []string{"", "INC-1 rewritten"} {
		err := hub.TryOffline(t, func(string) {
			if err := os.WriteFile(last, kept, 0o600); err != nil {
				t.Fatal(err)
			}
		})
		if !errors.Is(err, server.ErrTreeDamaged) {
			t.Errorf("start with declaration %q: got %v, want ErrTreeDamaged", declare, err)
		}
	}
}

// TestLastCheckpointFile: a hub without the file starts it from its data
// file's latest checkpoint; a damaged one is refused.
func TestLastCheckpointFile(t *testing.T) {
	var last string
	hub := hubtest.Start(t, hubtest.Options{Configure: func(c *server.Config) { c.LastCheckpoint = last }})
	hub.AddMember(t, "bank-a", api.RoleFlag)
	c := publish(t, hub)
	last = filepath.Join(hub.Dir, "last-checkpoint")
	if _, err := os.Stat(last); err == nil {
		t.Fatal("a hub without Config.LastCheckpoint wrote the file")
	}
	hub.Offline(t, func(string) {})
	if kept := read(t, last); !bytes.Equal(kept, c.Note) {
		t.Fatalf("%s holds %q, want the data file's latest checkpoint %q", last, kept, c.Note)
	}
	damaged := bytes.Replace(c.Note, []byte("\n"), []byte("\n\n"), 1)
	if err := os.WriteFile(last, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := hub.TryOffline(t, func(string) {}); !errors.Is(err, server.ErrLastCheckpoint) {
		t.Errorf("start with a damaged last checkpoint: got %v, want ErrLastCheckpoint", err)
	}
}

// publish signs a checkpoint now and returns it, opened.
func publish(t *testing.T, hub *hubtest.Hub) *protocol.Checkpoint {
	t.Helper()
	if _, err := hub.PublishCheckpoint(); err != nil {
		t.Fatal(err)
	}
	return latest(t, hub)
}

// latest is the hub's latest checkpoint, opened with its log key.
func latest(t *testing.T, hub *hubtest.Hub) *protocol.Checkpoint {
	t.Helper()
	note, _, err := hub.Store.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	v, err := protocol.NewLogVerifier(hub.Keys.LogVerifier)
	if err != nil {
		t.Fatal(err)
	}
	c, err := protocol.OpenCheckpoint(note, v)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func logSize(t *testing.T, hub *hubtest.Hub) uint64 {
	t.Helper()
	n, err := hub.Store.LogSize()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// truncateLog removes the last n entries of the log in the data file at
// path, and with dropCPs the checkpoints that cover them.
func truncateLog(t *testing.T, path string, n uint64, dropCPs bool) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		log := tx.Bucket([]byte("log"))
		size := log.Sequence()
		for i := size - n; i < size; i++ {
			if err := log.Delete(binary.BigEndian.AppendUint64(nil, i)); err != nil {
				return err
			}
		}
		if err := log.SetSequence(size - n); err != nil {
			return err
		}
		if !dropCPs {
			return nil
		}
		cps := tx.Bucket([]byte("checkpoints"))
		var drop [][]byte
		c := cps.Cursor()
		for k, _ := c.Seek(binary.BigEndian.AppendUint64(nil, size-n+1)); k != nil; k, _ = c.Next() {
			drop = append(drop, bytes.Clone(k))
		}
		for _, k := range drop {
			if err := cps.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// fileContents is every bucket's keys and values in the data file at path.
func fileContents(t *testing.T, path string) map[string]string {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string]string{}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			out[string(name)+"/sequence"] = fmt.Sprint(b.Sequence())
			return b.ForEach(func(k, v []byte) error {
				out[string(name)+"/"+string(k)] = string(v)
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func copyTo(t *testing.T, from, to string) {
	t.Helper()
	if err := os.WriteFile(to, read(t, from), 0o600); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
