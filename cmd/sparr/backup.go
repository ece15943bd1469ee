package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/server/store"
)

func runBackup(ctx context.Context, e *env, name string, args []string) error {
	fs := e.flags(name, "--out FILE (--data DIR | --hub URL)",
		"Backup writes a consistent copy of the hub's data file to FILE, which must not\nexist. With --hub it asks the running hub (a hot backup, signed for with the\noperator key); with --data alone it copies DIR/hub.db, which no hub may be using.\nThe copy holds DIR/hub.db only, never DIR/last-checkpoint. To restore, put the copy\nin place as DIR/hub.db, keeping DIR/keys and DIR/last-checkpoint; a hub that has signed\na checkpoint since the copy refuses it until started once with --declare-rollback\nREASON, which gives up the entries logged after the copy (docs/operations.md).")
	var h hubFlags
	h.register(fs)
	// Either flag names the source: neither is required alone.
	fs.Lookup("hub").Usage = "the running hub's `URL`, for a hot backup from it (or --data alone)"
	fs.Lookup("data").Usage = "the hub's data `DIR`: alone, DIR/hub.db is copied while no hub runs; with --hub, it holds the operator key"
	out := fs.String("out", "", "the backup `FILE` to write; never overwritten (required)")
	args, err := fs.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(name, args); err != nil {
		return err
	}
	switch {
	case *out == "":
		return usagef("%s: missing --out FILE, where to write the copy", name)
	case h.hub == "" && h.data == "":
		return usagef("%s: give --hub URL for a copy from the running hub, or --data DIR to copy DIR/hub.db while no hub runs", name)
	}
	if _, err := os.Lstat(*out); err == nil {
		return fmt.Errorf("%s already exists; backup never overwrites a file: choose another --out", *out)
	}

	var n int64
	progress := &copyProgress{out: e.stderr, every: backupProgressEvery, now: time.Now}
	if h.hub != "" {
		c, err := h.client(ctx, name)
		if err != nil {
			return err
		}
		n, err = writeNew(*out, func(w io.Writer) (int64, error) {
			n, err := c.Backup(ctx, progress.to(w))
			var p *client.Problem
			switch {
			case errors.As(err, &p), err != nil && n == 0:
				return n, hubError(h.hub, err)
			case err != nil:
				return n, fmt.Errorf("the copy broke off after %d bytes: %w; try again", n, err)
			}
			return n, nil
		})
		if err != nil {
			return err
		}
	} else {
		db := dbPath(h.data)
		if _, err := os.Stat(db); err != nil {
			return fmt.Errorf("no data file at %s: %w; check --data", db, err)
		}
		n, err = writeNew(*out, func(w io.Writer) (int64, error) { return store.BackupFile(db, progress.to(w)) })
		if errors.Is(err, store.ErrLocked) {
			return fmt.Errorf("%s is in use by a running hub; for a hot backup of it run sparr backup --hub URL --out %s", db, shellQuote(*out))
		}
		if err != nil {
			return err
		}
	}
	progress.done()
	fmt.Fprintf(e.stdout, "Wrote %d bytes to %s.\n", n, *out)
	fmt.Fprintf(e.stdout, "To restore: stop the hub, set its hub.db aside, copy %s to DIR/hub.db (mode 0600),\n"+
		"keep DIR/keys and DIR/last-checkpoint as they are, and start sparr serve --data DIR.\n"+
		"If the hub logged entries after this copy, it refuses to start on it: those entries are\n"+
		"lost with the restore. Then start it once with --declare-rollback 'REASON' (an incident\n"+
		"reference and a few words), which logs the rollback for regulators with the copy's log\n"+
		"size as new_size, and tell members to re-submit writes whose log_index is new_size or\n"+
		"more (docs/operations.md, Backups and restore).\n", *out)
	return nil
}

// backupProgressEvery is how often a backup says how far it is.
const backupProgressEvery = time.Second

// A copyProgress says on out how many bytes a copy has written so far, at
// most once every interval, and how many in all when it is done.
type copyProgress struct {
	out   io.Writer
	every time.Duration
	now   func() time.Time

	dst         io.Writer
	n           int64
	start, last time.Time
}

// to starts the count of what is written to dst, and returns the writer
// to write it through.
func (p *copyProgress) to(dst io.Writer) io.Writer {
	p.dst, p.n = dst, 0
	p.start = p.now()
	p.last = p.start
	return p
}

func (p *copyProgress) Write(b []byte) (int, error) {
	n, err := p.dst.Write(b)
	p.n += int64(n)
	if t := p.now(); t.Sub(p.last) >= p.every {
		p.last = t
		fmt.Fprintf(p.out, "backup: %s copied so far\n", byteCount(p.n))
	}
	return n, err
}

// done writes the last line.
func (p *copyProgress) done() {
	fmt.Fprintf(p.out, "backup: %s copied in %s\n", byteCount(p.n), p.now().Sub(p.start).Round(time.Millisecond))
}

// byteCount is "1234 bytes", or "12345678 bytes (11.8 MiB)".
func byteCount(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d bytes", n)
	}
	return fmt.Sprintf("%d bytes (%.1f MiB)", n, float64(n)/(1<<20))
}

// writeNew writes what fill writes to path, which must not exist, through
// a temporary file in the same directory that is synced and then linked
// into place, so path never holds a partial copy and is never replaced.
func writeNew(path string, fill func(io.Writer) (int64, error)) (int64, error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("cannot create %s: its directory %s does not exist; create it, or give --out a path in one that does", path, dir)
	}
	if err != nil {
		return 0, fmt.Errorf("create the backup file in %s: %w", dir, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	n, err := fill(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, err
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return n, fmt.Errorf("%s appeared while the copy was made; backup never overwrites a file: choose another --out", path)
		}
		// A file system without hard links: rename, having looked first.
		if _, serr := os.Lstat(path); serr == nil {
			return n, fmt.Errorf("%s already exists; backup never overwrites a file: choose another --out", path)
		}
		if err := os.Rename(tmp, path); err != nil {
			return n, fmt.Errorf("move the copy into place: %w", err)
		}
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return n, nil
}
