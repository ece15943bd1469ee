package protocol_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

func TestLogEntryRoundTrip(t *testing.T) {
	c := protocol.LogCommitment([]byte("salt"), []byte(`{"record":"x"}`))
	entries := []protocol.LogEntry{
		{Index: 0, Time: vectorTime, Member: "bank-a", Action: protocol.LogFlagPlaced, Result: "ok", Commitment: c},
		{Index: 42, Time: vectorTime.Add(184 * time.Millisecond), Member: "bank-b", Action: protocol.LogDelivery, Result: "ok",
			Attrs: []protocol.LogAttr{{Key: "event", Value: "17"}, {Key: "attempts", Value: "1"}, {Key: "latency_ms", Value: "4"}}},
		{Index: 7, Time: vectorTime, Member: "bank-c", Action: "submission", Result: "rejected:invalid-consent", Commitment: c},
	}
	want := []string{
		"sparr-log/1 0 2026-11-21T10:00:00.000000000Z bank-a flag-placed ok sha256:",
		"sparr-log/1 42 2026-11-21T10:00:00.184000000Z bank-b delivery ok - event=17 attempts=1 latency_ms=4\n",
		"sparr-log/1 7 2026-11-21T10:00:00.000000000Z bank-c submission rejected:invalid-consent sha256:",
	}
	for i, e := range entries {
		line, err := e.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(line), want[i]) || !bytes.HasSuffix(line, []byte("\n")) {
			t.Errorf("got %q, want it to start %q", line, want[i])
		}
		back, err := protocol.ParseLogEntry(line)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := back.Marshal()
		if !bytes.Equal(again, line) {
			t.Errorf("round trip: got %q, want %q", again, line)
		}
	}
}

func TestParseLogEntryRefuses(t *testing.T) {
	good := "sparr-log/1 3 2026-11-21T10:00:00.000000000Z bank-a check ok -\n"
	if _, err := protocol.ParseLogEntry([]byte(good)); err != nil {
		t.Fatalf("good line refused: %v", err)
	}
	for _, bad := range []string{
		strings.TrimSuffix(good, "\n"),
		good + "\n",
		strings.Replace(good, "sparr-log/1", "sparr-log/2", 1),
		strings.Replace(good, " 3 ", " 03 ", 1),
		strings.Replace(good, " 3 ", " -3 ", 1),
		strings.Replace(good, ".000000000Z", "Z", 1),
		strings.Replace(good, "10:00:00.000000000Z", "10:00:00.000000000+01:00", 1),
		strings.Replace(good, "bank-a", "bank a", 1),
		strings.Replace(good, " check ", " Check ", 1),
		strings.Replace(good, " ok ", " fine ", 1),
		strings.Replace(good, " -\n", " sha256:ABCD\n", 1),
		strings.Replace(good, " -\n", " sha256:"+strings.Repeat("AB", 32)+"\n", 1),
		strings.Replace(good, " -\n", " - k=v k=w\n", 1),
		strings.Replace(good, " -\n", " - k=a b\n", 1),
		strings.Replace(good, " -\n", "  -\n", 1),
		strings.Replace(good, " -\n", " - pnr=190905271474 token=pnr.1.AAAA\n", 1)[:0] + strings.Repeat("x", 2000),
	} {
		if _, err := protocol.ParseLogEntry([]byte(bad)); !errors.Is(err, protocol.ErrLogEntry) {
			t.Errorf("ParseLogEntry(%q): got %v, want ErrLogEntry", bad, err)
		}
	}
}

func FuzzParseLogEntry(f *testing.F) {
	f.Add([]byte("sparr-log/1 3 2026-11-21T10:00:00.000000000Z bank-a check ok -\n"))
	f.Add([]byte("sparr-log/1 42 2026-11-21T10:00:00.184000000Z bank-b delivery ok sha256:" + strings.Repeat("0f", 32) + " event=17\n"))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := protocol.ParseLogEntry(line)
		if err != nil {
			if !errors.Is(err, protocol.ErrLogEntry) {
				t.Fatalf("error %v is not ErrLogEntry", err)
			}
			return
		}
		again, err := e.Marshal()
		if err != nil || !bytes.Equal(again, line) {
			t.Fatalf("accepted %q but it marshals as %q, %v", line, again, err)
		}
	})
}
