package hubtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sparr-dev/sparr/server"
)

// A Witness is a tlog-witness for tests (c2sp.org/tlog-witness): a real
// HTTP server on loopback that checks each checkpoint's log signature and
// its consistency with the tree it holds, answers 409 with that tree's
// size when the request's old size is not it, and cosigns with
// filippo.io/torchwood's tlog-cosignature signer. It holds one log, in
// memory. Tests that need a witness nobody here wrote run torchwood's
// litewitness instead.
type Witness struct {
	URL    string
	Key    string // its note verifier key
	srv    *httptest.Server
	signer *torchwood.CosignatureSigner
	log    note.Verifier

	mu       sync.Mutex
	size     int64
	root     tlog.Hash
	down     bool
	requests int
	cosigned int
}

// StartWitness starts a witness named name, and stops it when the test
// ends. It knows no log until [Witness.AddLog], and refuses (403) a
// checkpoint of a log it does not know, as a witness does.
func StartWitness(t testing.TB, name string) *Witness {
	t.Helper()
	seed := sha256.Sum256([]byte("hubtest witness " + name))
	s, err := torchwood.NewCosignatureSigner(name, ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	w := &Witness{Key: s.Verifier().String(), signer: s, root: tlog.Hash(sha256.Sum256(nil))}
	w.srv = httptest.NewServer(http.HandlerFunc(w.serve))
	w.URL = w.srv.URL
	t.Cleanup(w.srv.Close)
	return w
}

// Config is the witness as a hub's configuration names it.
func (w *Witness) Config() server.Witness {
	return server.Witness{URL: w.URL, Key: w.Key}
}

// AddLog has the witness witness the log whose verifier key is logKey,
// from the empty tree.
func (w *Witness) AddLog(t testing.TB, logKey string) {
	t.Helper()
	v, err := note.NewVerifier(logKey)
	if err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log = v
}

// SetDown makes the witness answer every request 503 (down) or serve
// again.
func (w *Witness) SetDown(down bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.down = down
}

// Size returns the size of the tree the witness holds.
func (w *Witness) Size() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.size
}

// Counts returns how many requests the witness got and how many it
// cosigned.
func (w *Witness) Counts() (requests, cosigned int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.requests, w.cosigned
}

func (w *Witness) serve(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.requests++
	if w.down {
		http.Error(rw, "down for the test", http.StatusServiceUnavailable)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/add-checkpoint" {
		http.NotFound(rw, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	head, msg, ok := bytes.Cut(body, []byte("\n\n"))
	lines := strings.Split(string(head), "\n")
	oldText, isOld := strings.CutPrefix(lines[0], "old ")
	old, err := strconv.ParseInt(oldText, 10, 64)
	if !ok || !isOld || err != nil || old < 0 {
		http.Error(rw, "malformed request", http.StatusBadRequest)
		return
	}
	var proof tlog.TreeProof
	for _, l := range lines[1:] {
		h, err := tlog.ParseHash(l)
		if err != nil {
			http.Error(rw, "malformed proof", http.StatusBadRequest)
			return
		}
		proof = append(proof, h)
	}
	if w.log == nil {
		http.Error(rw, "unknown log", http.StatusForbidden)
		return
	}
	n, err := note.Open(msg, note.VerifierList(w.log))
	if err != nil {
		http.Error(rw, "not signed by the log: "+err.Error(), http.StatusForbidden)
		return
	}
	c, err := torchwood.ParseCheckpoint(n.Text)
	if err != nil || c.Origin != w.log.Name() {
		http.Error(rw, "unknown log", http.StatusForbidden)
		return
	}
	if old > c.N {
		http.Error(rw, "old size larger than the checkpoint's", http.StatusBadRequest)
		return
	}
	if old != w.size {
		rw.Header().Set("Content-Type", "text/x.tlog.size")
		rw.WriteHeader(http.StatusConflict)
		fmt.Fprintf(rw, "%d\n", w.size)
		return
	}
	if old > 0 {
		if err := tlog.CheckTree(proof, c.N, c.Hash, old, w.root); err != nil {
			http.Error(rw, "consistency proof does not verify", http.StatusUnprocessableEntity)
			return
		}
	}
	signed, err := note.Sign(&note.Note{Text: n.Text}, w.signer)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusInternalServerError)
		return
	}
	w.size, w.root = c.N, c.Hash
	w.cosigned++
	_, sigs, _ := bytes.Cut(signed, []byte("\n\n"))
	rw.Write(sigs)
}
