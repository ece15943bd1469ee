package protocol_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// The golden vectors in testdata/ are what other implementations test
// against. Each TestGolden… test regenerates one file from fixed seeds and
// fails unless the result matches the file byte for byte; with -update it
// rewrites the file instead:
//
//	go test ./protocol -run TestGolden -update
var update = flag.Bool("update", false, "rewrite the golden vectors in testdata/")

// checkGolden compares data with testdata/name, or writes it there with -update.
func checkGolden(t *testing.T, name string, data []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file: %v (generate it with: go test ./protocol -run TestGolden -update)", err)
	}
	if !bytes.Equal(data, want) {
		t.Errorf("testdata/%s does not regenerate byte for byte; if the change is intended, run\n\tgo test ./protocol -run TestGolden -update\nand review the diff", name)
	}
}

// marshalGolden is the one JSON layout every golden file uses: two-space
// indentation, HTML characters left alone, and a final newline.
func marshalGolden(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readGolden decodes testdata/name into v.
func readGolden(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decode testdata/%s: %v", name, err)
	}
}
