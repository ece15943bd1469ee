package protocol_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/sparr-dev/sparr/protocol"
)

// testdata/log.json is a small exchange log for other implementations of
// the regulator's checks: its entries, checkpoints at three sizes signed
// with a fixed log key, and inclusion and consistency proofs between them.
// testdata/log.entries holds the same entries as the hub serves them.

type logVectors struct {
	Origin      string            `json:"origin"`
	PublicKey   string            `json:"public_key"`
	Entries     []string          `json:"entries"`
	Checkpoints map[string]string `json:"checkpoints"`
	Inclusion   []proofVector     `json:"inclusion"`
	Consistency []proofVector     `json:"consistency"`
}

type proofVector struct {
	Index uint64   `json:"index,omitempty"`
	Old   uint64   `json:"old,omitempty"`
	Size  uint64   `json:"size"`
	Proof []string `json:"proof"`
}

var goldenSizes = []uint64{4, 7, 13}

func buildLogVectors(t *testing.T) (*logVectors, *memLog) {
	signer, _, vkey := logKeys(t, "sparr test vectors: log key")
	m := sampleLog(t, signer, 13)
	v := &logVectors{Origin: signer.Name(), PublicKey: vkey, Checkpoints: map[string]string{}}
	for _, l := range m.lines {
		v.Entries = append(v.Entries, string(l))
	}
	for _, size := range goldenSizes {
		v.Checkpoints[fmt.Sprint(size)] = string(m.checkpointAt(t, size))
		for _, idx := range []uint64{0, size / 2, size - 1} {
			p, err := tlog.ProveRecord(int64(size), int64(idx), m)
			if err != nil {
				t.Fatal(err)
			}
			v.Inclusion = append(v.Inclusion, proofVector{Index: idx, Size: size, Proof: b64Hashes(p)})
		}
	}
	for i, old := range goldenSizes {
		for _, size := range goldenSizes[i+1:] {
			p, err := tlog.ProveTree(int64(size), int64(old), m)
			if err != nil {
				t.Fatal(err)
			}
			v.Consistency = append(v.Consistency, proofVector{Old: old, Size: size, Proof: b64Hashes(p)})
		}
	}
	return v, m
}

func b64Hashes(hs []tlog.Hash) []string {
	out := []string{}
	for _, h := range hs {
		out = append(out, base64.StdEncoding.EncodeToString(h[:]))
	}
	return out
}

func TestGoldenLog(t *testing.T) {
	v, m := buildLogVectors(t)
	checkGolden(t, "log.json", marshalGolden(t, v))
	checkGolden(t, "log.entries", bytes.Join(m.lines, nil))
}

// TestLogVectors checks log.json as a regulator's tool would: each
// checkpoint verifies with the key and matches the entries' root, and each
// proof verifies.
func TestLogVectors(t *testing.T) {
	var v logVectors
	readGolden(t, "log.json", &v)
	key, err := protocol.NewLogVerifier(v.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join("testdata", "log.entries"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte(joinLines(v.Entries)); !bytes.Equal(raw, want) {
		t.Fatal("log.entries differs from log.json's entries")
	}
	roots := map[uint64]tlog.Hash{}
	for _, size := range goldenSizes {
		c, err := protocol.OpenCheckpoint([]byte(v.Checkpoints[fmt.Sprint(size)]), key)
		if err != nil {
			t.Fatal(err)
		}
		f := &protocol.Frontier{}
		for _, e := range v.Entries[:size] {
			if _, err := protocol.ParseLogEntry([]byte(e)); err != nil {
				t.Fatal(err)
			}
			f.Append([]byte(e))
		}
		if c.Size != size || c.Root != f.Root() {
			t.Errorf("checkpoint %d: size %d root %x, entries give root %x", size, c.Size, c.Root, f.Root())
		}
		roots[size] = c.Root
	}
	for _, p := range v.Inclusion {
		leaf := tlog.RecordHash([]byte(v.Entries[p.Index]))
		if err := tlog.CheckRecord(unb64(t, p.Proof), int64(p.Size), roots[p.Size], int64(p.Index), leaf); err != nil {
			t.Errorf("inclusion of %d in %d: %v", p.Index, p.Size, err)
		}
	}
	for _, p := range v.Consistency {
		if err := tlog.CheckTree(unb64(t, p.Proof), int64(p.Size), roots[p.Size], int64(p.Old), roots[p.Old]); err != nil {
			t.Errorf("consistency %d → %d: %v", p.Old, p.Size, err)
		}
	}
}

func joinLines(lines []string) string {
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l)
	}
	return b.String()
}

func unb64(t *testing.T, in []string) []tlog.Hash {
	t.Helper()
	out := make([]tlog.Hash, len(in))
	for i, s := range in {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != tlog.HashSize {
			t.Fatalf("proof hash %q", s)
		}
		copy(out[i][:], b)
	}
	return out
}
