package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server/keyring"
)

func logCommands() []*command {
	return []*command{
		{name: "verify", summary: "verify the hub's exchange log against a pinned key and the last checkpoint you kept", run: runLogVerify},
	}
}

type logFlags struct {
	hub, logKey, state, member, key, evidence string
	full                                      bool
}

func runLogVerify(ctx context.Context, e *env, name string, args []string) error {
	fs := e.flags(name, "--hub URL --log-key KEY --state FILE --member ID --key FILE [--evidence FILE]",
		"Verify fetches the hub's latest checkpoint, checks its signature against the pinned log key,\n"+
			"proves it consistent with the checkpoint kept in the state file (on the first run it trusts\n"+
			"the hub's on first use, and says so), downloads the new entries and recomputes the tree,\n"+
			"checks that indexes and times never go backwards and that every tombstone names an earlier\n"+
			"entry, and then keeps the new checkpoint. Any inconsistency exits 1 with the evidence.")
	var f logFlags
	fs.StringVar(&f.hub, "hub", "", "the hub's `URL`")
	fs.StringVar(&f.logKey, "log-key", "", "the log's public `KEY` (<origin>+<hash>+<key>), obtained out of band, or a file holding it")
	fs.StringVar(&f.state, "state", "", "`FILE` keeping the last verified checkpoint between runs")
	fs.StringVar(&f.member, "member", "", "your member `ID`, with the regulator role")
	fs.StringVar(&f.key, "key", "", "your member's private key, a JWK `FILE`")
	fs.StringVar(&f.evidence, "evidence", "", "on failure, also write the evidence as JSON to `FILE`")
	fs.BoolVar(&f.full, "full", false, "check every entry from the first, not only the new ones (finds entries changed after an earlier run checked them)")
	rest, err := fs.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(name, rest); err != nil {
		return err
	}
	for _, r := range []struct{ flag, v string }{{"hub", f.hub}, {"log-key", f.logKey}, {"state", f.state}, {"member", f.member}, {"key", f.key}} {
		if r.v == "" {
			return usagef("%s: --%s is required", name, r.flag)
		}
	}
	vkey := f.logKey
	if b, err := os.ReadFile(vkey); err == nil {
		vkey = strings.TrimSpace(string(b))
	}
	key, err := protocol.NewLogVerifier(vkey)
	if err != nil {
		return usagef("%s: --log-key: %v", name, err)
	}
	signer, err := keyring.LoadOperator(f.key)
	if err != nil {
		return fmt.Errorf("--key: %w", err)
	}
	var state *protocol.LogState
	if b, err := os.ReadFile(f.state); err == nil {
		state = new(protocol.LogState)
		if err := json.Unmarshal(b, state); err != nil {
			return fmt.Errorf("state file %s is not a sparr log state (%v); restore it from your copy, or move it away to start over (trusting the hub on first use again)", f.state, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("state file: %w", err)
	}

	c, err := newMemberClient(ctx, strings.TrimSuffix(f.hub, "/"), f.member, signer)
	if err != nil {
		return err
	}
	progress := newProgress(e)
	auditor := &protocol.LogAuditor{Fetcher: &hubLog{c: c}, Key: key, Progress: progress.report, Full: f.full}
	start := time.Now()
	newState, report, err := auditor.Verify(ctx, state)
	progress.done()
	if err != nil {
		return logFailure(e, f, key.Name(), err)
	}
	b, err := json.MarshalIndent(newState, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(f.state, append(b, '\n')); err != nil {
		return fmt.Errorf("the log verified, but keeping the new checkpoint failed: %w", err)
	}
	printLogReport(e, f, key.Name(), report, time.Since(start))
	return nil
}

// hubLog fetches the log over the hub's API: the protocol.LogFetcher of
// a regulator's verification.
type hubLog struct{ c *adminClient }

var _ protocol.LogFetcher = (*hubLog)(nil)

func (h *hubLog) Checkpoint(ctx context.Context) ([]byte, error) {
	return h.c.call(ctx, http.MethodGet, "/v1/log/checkpoint", nil)
}

func (h *hubLog) Entries(ctx context.Context, start, end uint64) ([][]byte, error) {
	b, err := h.c.call(ctx, http.MethodGet, fmt.Sprintf("/v1/log/entries?start=%d&end=%d", start, end), nil)
	if err != nil {
		return nil, err
	}
	var lines [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			lines = append(lines, b) // a line without its newline: the parser refuses it
			break
		}
		lines = append(lines, b[:i+1])
		b = b[i+1:]
	}
	return lines, nil
}

func (h *hubLog) ConsistencyProof(ctx context.Context, old, new uint64) (tlog.TreeProof, error) {
	b, err := h.c.call(ctx, http.MethodGet, fmt.Sprintf("/v1/log/proof/consistency?old=%d&new=%d", old, new), nil)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Proof []string `json:"proof"`
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		return nil, fmt.Errorf("consistency proof: %w", err)
	}
	proof := make(tlog.TreeProof, len(resp.Proof))
	for i, s := range resp.Proof {
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(raw) != tlog.HashSize {
			return nil, fmt.Errorf("consistency proof: hash %d is not %d bytes of base64", i, tlog.HashSize)
		}
		copy(proof[i][:], raw)
	}
	return proof, nil
}

// progress prints how far a long run is, at most once a second.
type progress struct {
	e     *env
	last  time.Time
	shown bool
}

func newProgress(e *env) *progress { return &progress{e: e, last: time.Now()} }

func (p *progress) report(done, total uint64) {
	if time.Since(p.last) < time.Second || done == total {
		return
	}
	p.last, p.shown = time.Now(), true
	fmt.Fprintf(p.e.stderr, "\rchecked %d of %d new entries (%d%%)", done, total, done*100/total)
}

func (p *progress) done() {
	if p.shown {
		fmt.Fprintln(p.e.stderr)
	}
}

func printLogReport(e *env, f logFlags, origin string, r *protocol.LogReport, took time.Duration) {
	w := e.stdout
	fmt.Fprintf(w, "Exchange log %s at %s\n", origin, f.hub)
	if r.Old == nil {
		fmt.Fprintf(w, "  earlier checkpoint:  none — first run: the hub's checkpoint is trusted on first use;\n")
		fmt.Fprintf(w, "                       keep %s, every later run is checked against it\n", f.state)
	} else {
		fmt.Fprintf(w, "  earlier checkpoint:  size %d, root %s\n", r.Old.Size, b64(r.Old.Root))
	}
	fmt.Fprintf(w, "  latest checkpoint:   size %d, root %s (signature verified)\n", r.New.Size, b64(r.New.Root))
	if r.Old != nil {
		if r.Old.Size == r.New.Size {
			fmt.Fprintf(w, "  consistency:         unchanged since the earlier checkpoint\n")
		} else {
			fmt.Fprintf(w, "  consistency:         proved, %d → %d\n", r.Old.Size, r.New.Size)
		}
	}
	fmt.Fprintf(w, "  new entries:         %d checked", r.Entries)
	if r.Entries > 0 {
		fmt.Fprintf(w, ", %s to %s", r.First.Format(time.RFC3339), r.Last.Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	if len(r.Actions) > 0 {
		actions := make([]string, 0, len(r.Actions))
		for a := range r.Actions {
			actions = append(actions, a)
		}
		slices.SortFunc(actions, func(a, b string) int {
			if r.Actions[a] != r.Actions[b] {
				return int(r.Actions[b]) - int(r.Actions[a])
			}
			return strings.Compare(a, b)
		})
		var parts []string
		for _, a := range actions {
			parts = append(parts, fmt.Sprintf("%s %d", a, r.Actions[a]))
		}
		fmt.Fprintf(w, "  by action:           %s\n", strings.Join(parts, ", "))
	}
	fmt.Fprintf(w, "  tombstones:          %d (erasures, each naming an earlier entry)\n", r.Tombstones)
	fmt.Fprintf(w, "  result:              OK in %s; checkpoint kept in %s\n", took.Round(time.Millisecond), f.state)
}

// logFailure prints the evidence of a failed verification, and writes it
// to --evidence, so that a regulator can file it.
func logFailure(e *env, f logFlags, origin string, err error) error {
	ev := map[string]any{"log": origin, "hub": f.hub, "checked_at": time.Now().UTC().Format(time.RFC3339), "error": err.Error()}
	for _, kind := range []error{protocol.ErrCheckpointSignature, protocol.ErrCheckpointMalformed, protocol.ErrLogInconsistent, protocol.ErrLogTruncated,
		protocol.ErrLogRootMismatch, protocol.ErrLogEntryMissing, protocol.ErrLogTimeBackwards, protocol.ErrLogBadTombstone} {
		if errors.Is(err, kind) {
			ev["kind"] = kind.Error()
		}
	}
	var ie *protocol.InconsistencyError
	var ee *protocol.EntryError
	w := e.stdout
	fmt.Fprintf(w, "Exchange log %s at %s: VERIFICATION FAILED\n  %v\n", origin, f.hub, err)
	switch {
	case errors.As(err, &ie):
		ev["earlier_checkpoint"], ev["latest_checkpoint"] = string(ie.Old.Note), string(ie.New.Note)
		fmt.Fprintf(w, "\nEarlier checkpoint (from %s):\n%s\nLatest checkpoint:\n%s", f.state, ie.Old.Note, ie.New.Note)
		if ie.Proof != nil {
			proof := make([]string, len(ie.Proof))
			for i, h := range ie.Proof {
				proof[i] = b64(h)
			}
			ev["proof"] = proof
			fmt.Fprintf(w, "\nConsistency proof %d → %d as served (it does not verify):\n  %s\n", ie.Old.Size, ie.New.Size, strings.Join(proof, "\n  "))
		}
	case errors.As(err, &ee):
		ev["entry_index"], ev["entry"], ev["latest_checkpoint"] = ee.Index, string(ee.Entry), string(ee.Checkpoint.Note)
		fmt.Fprintf(w, "\nEntry %d as served:\n  %s\nChecked against checkpoint:\n%s", ee.Index, strings.TrimSuffix(string(ee.Entry), "\n"), ee.Checkpoint.Note)
	}
	fmt.Fprintf(w, "\nThe state file %s was not changed.\n", f.state)
	if f.evidence != "" {
		b, _ := json.MarshalIndent(ev, "", "  ")
		if werr := writeFileAtomic(f.evidence, append(b, '\n')); werr != nil {
			fmt.Fprintf(e.stderr, "sparr: writing the evidence to %s failed: %v\n", f.evidence, werr)
		} else {
			fmt.Fprintf(w, "The evidence is in %s.\n", f.evidence)
		}
	}
	return fmt.Errorf("the exchange log at %s did not verify: %w", f.hub, err)
}

func b64(h tlog.Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }

// writeFileAtomic replaces path with data through a synced temporary
// file, so a crash leaves the old file or the new, never half of one.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, bytes.NewReader(data)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
