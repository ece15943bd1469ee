package protocol_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/sparr-dev/sparr/protocol"
)

func TestParseProofHashes(t *testing.T) {
	a, b := tlog.RecordHash([]byte("a")), tlog.RecordHash([]byte("b"))
	enc := func(h tlog.Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }

	got, err := protocol.ParseProofHashes([]string{enc(a), enc(b)})
	if err != nil || len(got) != 2 || got[0] != a || got[1] != b {
		t.Errorf("ParseProofHashes(two hashes): got %v, %v, want [%v %v]", got, err, a, b)
	}
	if got, err := protocol.ParseProofHashes(nil); err != nil || got == nil || len(got) != 0 {
		t.Errorf("ParseProofHashes(nil): got %#v, %v, want an empty proof", got, err)
	}

	short := base64.StdEncoding.EncodeToString(a[:31])
	for _, tc := range []struct {
		hashes []string
		want   string
	}{
		{[]string{"!!!"}, "hash 0 "},
		{[]string{enc(a), short}, "hash 1 "},
		{[]string{enc(a), enc(b), enc(a) + "AAAA"}, "hash 2 "},
		{[]string{enc(a), base64.RawStdEncoding.EncodeToString(b[:])}, "hash 1 "},
		{[]string{""}, "hash 0 "},
	} {
		got, err := protocol.ParseProofHashes(tc.hashes)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) || got != nil {
			t.Errorf("ParseProofHashes(%q): got %v, %v, want an error starting %q", tc.hashes, got, err, tc.want)
		}
	}
}
