package main

import (
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCopyProgress(t *testing.T) {
	// A clock that moves 400 ms at every write: with a line at most once a
	// second, writes 3, 6 and 9 of 10 say how far the copy is.
	clock := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	var out, dst bytes.Buffer
	p := &copyProgress{out: &out, every: time.Second, now: func() time.Time { return clock }}
	w := p.to(&dst)
	for range 10 {
		clock = clock.Add(400 * time.Millisecond)
		if _, err := io.WriteString(w, strings.Repeat("x", 100)); err != nil {
			t.Fatal(err)
		}
	}
	p.done()
	want := "backup: 300 bytes copied so far\n" +
		"backup: 600 bytes copied so far\n" +
		"backup: 900 bytes copied so far\n" +
		"backup: 1000 bytes copied in 4s\n"
	if out.String() != want {
		t.Errorf("progress:\n%s\nwant:\n%s", out.String(), want)
	}
	if dst.Len() != 1000 {
		t.Errorf("the copy has %d bytes, want 1000", dst.Len())
	}
}

func TestBackupHelp(t *testing.T) {
	_, stdout, _ := sparr(t, nil, "backup", "-h")
	for _, block := range strings.Split(stdout, "\n  --")[1:] {
		if f := strings.Fields(block)[0]; (f == "hub" || f == "data") && strings.Contains(block, "required") {
			t.Errorf("backup -h marks --%s required, though either --hub or --data will do:\n  --%s", f, block)
		}
	}
	if !strings.Contains(stdout, "--out FILE  (SPARR_BACKUP_OUT)\n      the backup FILE to write; never overwritten (required)") {
		t.Errorf("backup -h does not mark --out required:\n%s", stdout)
	}
}

// TestWriteNewNamesAMissingDirectory: a backup into a directory that does
// not exist says so, and what to do, not the temporary file's name.
func TestWriteNewNamesAMissingDirectory(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-dir")
	_, err := writeNew(filepath.Join(missing, "hub.db"), func(io.Writer) (int64, error) { return 0, nil })
	if err == nil || !strings.Contains(err.Error(), "directory "+missing+" does not exist") || strings.Contains(err.Error(), ".tmp-") {
		t.Errorf("got %v, want it to name the missing directory", err)
	}
}
