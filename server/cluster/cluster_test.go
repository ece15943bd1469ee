package cluster_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server/cluster"
	"github.com/sparr-dev/sparr/server/state"
)

func TestEntryRoundTrip(t *testing.T) {
	small := &state.Note{Head: state.Head{At: time.Unix(1700000000, 0).UTC(), Actor: "bank-a", Entry: state.Entry{Action: protocol.LogCheck}}}
	big := &state.Note{Head: state.Head{At: time.Unix(1700000000, 0).UTC(), Actor: "bank-a",
		Entry: state.Entry{Action: protocol.LogCheck, Details: bytes.Repeat([]byte(`{"a":"b"}`), 10000)}}}
	for _, c := range []state.Command{small, big} {
		b, err := cluster.EncodeEntry(c)
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := state.Encode(c)
		if compressed := b[0] == 'z'; compressed != (len(plain) > 16<<10) {
			t.Errorf("an entry of %d bytes encoded: compressed %v", len(plain), compressed)
		}
		got, err := cluster.DecodeEntry(b)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := state.Encode(got)
		if !bytes.Equal(again, plain) {
			t.Errorf("got %d bytes back, want the %d encoded", len(again), len(plain))
		}
	}
	if _, err := cluster.DecodeEntry([]byte("z\x00garbage")); !errors.Is(err, cluster.ErrEntry) {
		t.Errorf("garbage after the mark: got %v, want ErrEntry", err)
	}
}

func FuzzDecodeEntry(f *testing.F) {
	c := &state.Note{Head: state.Head{At: time.Unix(1700000000, 0).UTC(), Actor: "bank-a", Entry: state.Entry{Action: protocol.LogCheck}}}
	plain, _ := state.Encode(c)
	f.Add(plain)
	big := &state.Note{Head: state.Head{At: time.Unix(1700000000, 0).UTC(), Actor: "bank-a",
		Entry: state.Entry{Action: protocol.LogCheck, Details: bytes.Repeat([]byte(`{"a":"b"}`), 3000)}}}
	z, _ := cluster.EncodeEntry(big)
	f.Add(z)
	f.Add([]byte("z"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		cmd, err := cluster.DecodeEntry(b)
		if err != nil {
			return
		}
		// What decodes encodes, and decodes to the same again.
		e, err := cluster.EncodeEntry(cmd)
		if err != nil {
			t.Fatalf("decoded %s does not encode: %v", cmd.Kind(), err)
		}
		if _, err := cluster.DecodeEntry(e); err != nil {
			t.Fatalf("re-encoded %s does not decode: %v", cmd.Kind(), err)
		}
	})
}

func TestParseServers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" for an error
	}{
		{"n1=127.0.0.1:7001,n2=127.0.0.1:7002", "n1=127.0.0.1:7001,n2=127.0.0.1:7002"},
		{" n1=h1:1 , n2=h2:2 ", "n1=h1:1,n2=h2:2"},
		{"n1=127.0.0.1:7001,n1=127.0.0.1:7002", ""},
		{"n1=127.0.0.1:7001,n2=127.0.0.1:7001", ""},
		{"n1=127.0.0.1", ""},
		{"n 1=h:1", ""},
		{"", ""},
		{"=h:1", ""},
	} {
		got, err := cluster.ParseServers(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("ParseServers(%q) = %v, want an error", tc.in, got)
		case tc.want != "" && (err != nil || cluster.String(got) != tc.want):
			t.Errorf("ParseServers(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseServers(f *testing.F) {
	for _, s := range []string{"n1=127.0.0.1:7001,n2=127.0.0.1:7002", "n1=[::1]:7001", "n1=h:1,,", "x", "n1=h:1,n1=h:2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		servers, err := cluster.ParseServers(s)
		if err != nil {
			return
		}
		// What parses prints as a list that parses to the same.
		again, err := cluster.ParseServers(cluster.String(servers))
		if err != nil || cluster.String(again) != cluster.String(servers) {
			t.Fatalf("%q parsed to %v, which prints as %q and parses to %v, %v", s, servers, cluster.String(servers), again, err)
		}
		for _, sv := range servers {
			if !cluster.ValidID(sv.ID) || strings.ContainsAny(sv.Addr, ",=") && !strings.Contains(s, sv.Addr) {
				t.Fatalf("%q gave server %+v", s, sv)
			}
		}
	})
}
