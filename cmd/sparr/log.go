package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server/keyring"
)

func logCommands() []*command {
	return []*command{
		{name: "verify", summary: "verify the hub's exchange log against a pinned key and the last checkpoint you kept", run: runLogVerify},
		{name: "export", summary: "export the entries a filter selects as a self-verifying bundle", run: runLogExport},
		{name: "verify-bundle", summary: "check a bundle of log entries offline", run: runLogVerifyBundle},
	}
}

type logFlags struct {
	hub, logKey, state, member, key, evidence string
	full, asJSON                              bool
	witnesses                                 witnessKeysValue
	quorum                                    int
}

// The exit status of sparr log verify: 0 when the log verified, 1 when it
// did not (with evidence), exitCouldNotCheck when it could not be checked,
// and 2 for a usage error, as for every command.
const exitCouldNotCheck = 3

// How a verification retries a request the hub (or a proxy) answered 429,
// 502, 503 or 504: after the answer's Retry-After, or a backoff. One left
// without an answer is not sent again: the hub cannot be reached.
const (
	logFetchAttempts = 5           // requests for one thing, at most
	logRetryMaxWait  = time.Minute // the longest Retry-After honoured
	logRetryBackoff  = time.Second // the first wait when the hub gives no Retry-After
)

// runLogVerify runs verifyLog and gives every failure its documented exit
// status: 1 only for a log that did not verify (logFailure says so), 2 for
// a usage error, 3 for anything else, which is no finding against the log
// (printing the outcome failed, say).
func runLogVerify(ctx context.Context, e *env, name string, args []string) error {
	err := verifyLog(ctx, e, name, args)
	var ue *usageError
	var xe *exitError
	if err == nil || errors.As(err, &ue) || errors.As(err, &xe) {
		return err
	}
	return &exitError{code: exitCouldNotCheck, err: err}
}

// logVerifyFlags reads log verify's flags, and checks that the required
// ones are given.
func logVerifyFlags(e *env, name string, args []string) (logFlags, error) {
	fs := e.flags(name, "--hub URL --log-key KEY --state FILE --member ID --key FILE [--witness KEY … [--quorum N]] [--evidence FILE] [--full] [--json]",
		"Verify fetches the hub's latest checkpoint, checks its signature against the pinned log key,\n"+
			"proves it consistent with the checkpoint kept in the state file (on the first run it trusts\n"+
			"the hub's on first use, and says so), downloads the new entries and recomputes the tree,\n"+
			"checks that indexes and times never go backwards and that every tombstone names an earlier\n"+
			"entry, and then keeps the new checkpoint. A log that no longer extends the kept checkpoint\n"+
			"passes only if the hub declared the rollback in its log (rollback-declared, with the\n"+
			"operator's reason): then the whole log is checked again, and the rollback is reported.\n"+
			"A 429, 502, 503 or 504 answer is retried after its Retry-After, a few times.\n\n"+
			"With --witness (the keys of witnesses you trust, obtained from them, not from the hub) it\n"+
			"accepts the latest checkpoint only if at least --quorum of them cosigned it (all of them\n"+
			"by default), before it reads any entry, and says which did. Short of the quorum it exits 1\n"+
			"and keeps nothing: the witnesses may not have cosigned the newest checkpoint yet (GET\n"+
			"/v1/log/witnesses shows how they stand), so run it again shortly.\n\n"+
			"Exit status: 0 the log verified; 1 it did not: the evidence is printed (and written to\n"+
			"--evidence) and the state file is left as it was; 2 a usage error; 3 the log could not be\n"+
			"checked (the hub unreachable or refusing, the state file unusable): nothing was found\n"+
			"against the log, and no evidence is written.\n\n"+
			"With --json the outcome is one JSON document instead of text, whose \"result\" is\n"+
			"\"verified\", \"failed\" (with the evidence) or \"could-not-check\".")
	var f logFlags
	fs.StringVar(&f.hub, "hub", "", "the hub's `URL`")
	fs.StringVar(&f.logKey, "log-key", "", "the log's public `KEY` (<origin>+<hash>+<key>), obtained out of band, or a file holding it")
	fs.StringVar(&f.state, "state", "", "`FILE` keeping the last verified checkpoint between runs")
	fs.StringVar(&f.member, "member", "", "your member `ID`, with the regulator role")
	fs.StringVar(&f.key, "key", "", "your member's private key, a JWK `FILE`")
	fs.StringVar(&f.evidence, "evidence", "", "when the log does not verify, also write the evidence as JSON to `FILE`")
	fs.BoolVar(&f.full, "full", false, "check every entry from the first, not only the new ones (finds entries changed after an earlier run checked them)")
	fs.BoolVar(&f.asJSON, "json", false, "print the outcome as JSON instead of text")
	fs.Var(&f.witnesses, "witness", "a witness's public `KEY` (<name>+<hash>+<key>), or a file holding it; repeat it for each witness you trust, or separate several by commas")
	fs.IntVar(&f.quorum, "quorum", 0, "how many of the --witness keys must have cosigned the checkpoint, `N` (default: all of them)")
	rest, err := fs.parse(args)
	if err != nil {
		return f, err
	}
	if err := noArgs(name, rest); err != nil {
		return f, err
	}
	for _, r := range []struct{ flag, v string }{{"hub", f.hub}, {"log-key", f.logKey}, {"state", f.state}, {"member", f.member}, {"key", f.key}} {
		if r.v == "" {
			return f, usagef("%s: --%s is required", name, r.flag)
		}
	}
	switch {
	case fs.given("quorum") && len(f.witnesses) == 0:
		return f, usagef("%s: --quorum %d needs the witnesses' keys: give each with --witness", name, f.quorum)
	case !fs.given("quorum"):
		f.quorum = len(f.witnesses)
	case f.quorum < 1 || f.quorum > len(f.witnesses):
		return f, usagef("%s: --quorum %d: want 1 to %d, the number of --witness keys given", name, f.quorum, len(f.witnesses))
	}
	return f, nil
}

// verifyLog verifies the log, as log verify's help says, and prints the
// outcome.
func verifyLog(ctx context.Context, e *env, name string, args []string) error {
	f, err := logVerifyFlags(e, name, args)
	if err != nil {
		return err
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
		return couldNotCheck(e, f, key.Name(), fmt.Errorf("--key: %w", err), adviceLocal)
	}
	var state *protocol.LogState
	if b, err := os.ReadFile(f.state); err == nil {
		state = new(protocol.LogState)
		if err := json.Unmarshal(b, state); err != nil {
			return couldNotCheck(e, f, key.Name(), fmt.Errorf("state file %s is not a sparr log state (%v); restore it from your copy, or move it away to start over (trusting the hub on first use again)", f.state, err), "")
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return couldNotCheck(e, f, key.Name(), fmt.Errorf("state file: %w", err), adviceLocal)
	}

	c, err := connect(ctx, f.hub, f.member, signer, client.Retry{Attempts: logFetchAttempts, Backoff: logRetryBackoff, MaxWait: logRetryMaxWait, AnsweredOnly: true})
	if err != nil {
		return couldNotCheck(e, f, key.Name(), err, adviceHub)
	}
	progress := newProgress(e)
	auditor := &protocol.LogAuditor{Fetcher: c.Log(), Key: key, Progress: progress.report, Full: f.full, Witnesses: f.witnesses, Quorum: f.quorum}
	start := time.Now()
	newState, report, err := auditor.Verify(ctx, state)
	progress.done()
	var ce *protocol.CheckpointError
	var ie *protocol.InconsistencyError
	var ee *protocol.EntryError
	var qe *protocol.QuorumError
	switch {
	case errors.As(err, &qe):
		return quorumNotMet(e, f, key.Name(), qe)
	case errors.As(err, &ce), errors.As(err, &ie), errors.As(err, &ee):
		return logFailure(e, f, key.Name(), state, err)
	case errors.Is(err, protocol.ErrLogState):
		return couldNotCheck(e, f, key.Name(), err, "") // the error says what to do
	case err != nil:
		var p *client.Problem
		if errors.As(err, &p) && p.RetryAfter > logRetryMaxWait {
			err = fmt.Errorf("%w (the hub asked to wait %s, longer than %s)", err, p.RetryAfter, logRetryMaxWait)
		}
		return couldNotCheck(e, f, key.Name(), err, adviceHub)
	}
	b, err := json.MarshalIndent(newState, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(f.state, append(b, '\n')); err != nil {
		err = fmt.Errorf("the exchange log at %s verified, but keeping the new checkpoint in %s failed: %w", f.hub, f.state, err)
		if f.asJSON {
			doc := logReportJSON(f, key.Name(), report, time.Since(start))
			doc["result"], doc["error"] = "could-not-check", err.Error()
			if perr := printJSON(e.stdout, doc); perr != nil {
				return perr
			}
			return &exitError{code: exitCouldNotCheck, err: err}
		}
		fmt.Fprintf(e.stdout, "Exchange log %s at %s: verified up to %d entries, but the new checkpoint could not be kept\n  %v\n", key.Name(), f.hub, report.New.Size, err)
		fmt.Fprintf(e.stdout, "\nThe state file %s still holds the checkpoint of the last run: the next run checks these entries again.\n"+
			"Make the state file writable, then run it again.\n", f.state)
		return &exitError{code: exitCouldNotCheck, err: err}
	}
	if f.asJSON {
		return printJSON(e.stdout, logReportJSON(f, key.Name(), report, time.Since(start)))
	}
	printLogReport(e, f, key.Name(), report, time.Since(start))
	return nil
}

// quorumNotMet says that too few of the trusted witnesses cosigned the
// latest checkpoint, and which did, and exits 1 keeping nothing.
func quorumNotMet(e *env, f logFlags, origin string, qe *protocol.QuorumError) error {
	xe := &exitError{code: 1, err: fmt.Errorf("exchange log %s: the latest checkpoint (size %d) is cosigned by %d of the %d witnesses given (%s), the quorum is %d; not accepted, nothing kept: run it again shortly, or see GET /v1/log/witnesses",
		origin, qe.Checkpoint.Size, len(qe.Signed), len(f.witnesses), signers(qe.Signed), qe.Quorum)}
	if f.asJSON {
		doc := map[string]any{"result": "quorum-not-met", "log": origin, "hub": f.hub, "state": f.state,
			"latest_checkpoint": map[string]any{"size": qe.Checkpoint.Size, "root": b64(qe.Checkpoint.Root)},
			"quorum":            qe.Quorum, "witnesses": witnessesJSON(qe.Signed, qe.Missing), "error": xe.err.Error()}
		if err := printJSON(e.stdout, doc); err != nil {
			return err
		}
	}
	return xe
}

// signers names the witnesses that cosigned, for messages.
func signers(cs []protocol.Cosignature) string {
	if len(cs) == 0 {
		return "none"
	}
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.Witness
	}
	return strings.Join(names, ", ")
}

// witnessesJSON is each witness's part in the checkpoint, for --json.
func witnessesJSON(signed []protocol.Cosignature, missing []string) []map[string]any {
	out := []map[string]any{}
	for _, c := range signed {
		w := map[string]any{"name": c.Witness, "cosigned": true}
		if !c.Time.IsZero() {
			w["time"] = c.Time.UTC().Format(time.RFC3339)
		}
		out = append(out, w)
	}
	for _, m := range missing {
		out = append(out, map[string]any{"name": m, "cosigned": false})
	}
	return out
}

// What to do when the log could not be checked: after a failure to get
// what the check needs from the hub, and after a local one (a key or state
// file) whose message says what was wrong.
const (
	adviceHub   = "Run it again later; if it keeps failing, ask the hub's operator."
	adviceLocal = "Fix that, then run it again."
)

// couldNotCheck says that the log could not be checked, which is no
// finding against it, then what to do (advice; empty when err says it),
// and exits with exitCouldNotCheck.
func couldNotCheck(e *env, f logFlags, origin string, err error, advice string) error {
	xe := &exitError{code: exitCouldNotCheck, err: fmt.Errorf("could not check the exchange log: %w", err)}
	if f.asJSON {
		doc := map[string]any{"result": "could-not-check", "log": origin, "hub": f.hub, "state": f.state, "error": err.Error()}
		if advice != "" {
			doc["advice"] = advice
		}
		if perr := printJSON(e.stdout, doc); perr != nil {
			return perr
		}
		return xe
	}
	fmt.Fprintf(e.stdout, "Exchange log %s at %s: could not check it\n  %v\n", origin, f.hub, err)
	fmt.Fprintf(e.stdout, "\nThis is not a finding against the log: nothing was verified, no evidence was written,\n"+
		"and the state file %s was not changed.", f.state)
	if advice != "" {
		fmt.Fprintf(e.stdout, " %s", advice)
	}
	fmt.Fprintln(e.stdout)
	return xe
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

// logReportJSON is what printLogReport says, for --json.
func logReportJSON(f logFlags, origin string, r *protocol.LogReport, took time.Duration) map[string]any {
	checkpoint := func(c *protocol.Checkpoint) map[string]any {
		return map[string]any{"size": c.Size, "root": b64(c.Root)}
	}
	doc := map[string]any{
		"result": "verified", "log": origin, "hub": f.hub, "state": f.state,
		"first_run": r.Old == nil, "latest_checkpoint": checkpoint(r.New),
		"full": r.Full, "new_entries": r.Added, "entries_checked": r.Entries,
		"tombstones": r.Tombstones, "took_ms": took.Milliseconds(),
	}
	if r.Old != nil {
		doc["earlier_checkpoint"] = checkpoint(r.Old)
		doc["consistency"] = "proved"
		if r.Declared != nil {
			doc["consistency"] = "declared-rollback"
			doc["given_up_by"] = r.Declared.Index
		}
	}
	rollbacks := []map[string]any{}
	for _, rb := range r.Rollbacks {
		rollbacks = append(rollbacks, map[string]any{"index": rb.Index, "reason": rb.Reason,
			"old_checkpoint": map[string]any{"size": rb.OldSize, "root": b64(rb.OldRoot)}, "new_size": rb.NewSize})
	}
	doc["declared_rollbacks"] = rollbacks
	if len(f.witnesses) > 0 {
		doc["quorum"], doc["witnesses"] = f.quorum, witnessesJSON(r.Cosignatures, r.MissingWitnesses)
	}
	if r.Entries > 0 {
		doc["first_entry_time"], doc["last_entry_time"] = r.First.UTC().Format(time.RFC3339), r.Last.UTC().Format(time.RFC3339)
	}
	actions := map[string]uint64{}
	for a, n := range r.Actions {
		actions[string(a)] = n
	}
	doc["actions"] = actions
	return doc
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
	if len(f.witnesses) > 0 {
		missing := ""
		if len(r.MissingWitnesses) > 0 {
			missing = "; not by " + strings.Join(r.MissingWitnesses, ", ")
		}
		fmt.Fprintf(w, "  witnesses:           cosigned by %d of %d (quorum %d): %s%s\n", len(r.Cosignatures), len(f.witnesses), f.quorum, signers(r.Cosignatures), missing)
	}
	switch {
	case r.Old == nil:
	case r.Declared != nil:
		fmt.Fprintf(w, "  consistency:         DECLARED ROLLBACK: the log no longer extends the earlier checkpoint; the hub's\n"+
			"                       operator declared it in entry %d, which gave up entries %d to %d of the log\n"+
			"                       you checked before. The whole log was checked again.\n", r.Declared.Index, r.Declared.NewSize, r.Old.Size-1)
	case r.Old.Size == r.New.Size:
		fmt.Fprintf(w, "  consistency:         unchanged since the earlier checkpoint\n")
	default:
		fmt.Fprintf(w, "  consistency:         proved, %d → %d\n", r.Old.Size, r.New.Size)
	}
	for _, rb := range r.Rollbacks {
		fmt.Fprintf(w, "  declared rollback:   entry %d: the log went back from %d entries (root %s) to %d;\n"+
			"                       reason: %s\n", rb.Index, rb.OldSize, b64(rb.OldRoot), rb.NewSize, rb.Reason)
	}
	span := ""
	if r.Entries > 0 {
		span = fmt.Sprintf(", %s to %s", r.First.Format(time.RFC3339), r.Last.Format(time.RFC3339))
	}
	// The counts below are of the entries checked: the new ones, or with
	// --full the whole log.
	scope := "new entries"
	if r.Full {
		scope = "whole log"
		why := "--full"
		if r.Declared != nil {
			why = "the declared rollback"
		}
		fmt.Fprintf(w, "  whole log:           %d entries checked (%s)%s\n", r.Entries, why, span)
		switch {
		case r.Declared != nil:
			fmt.Fprintf(w, "  new entries:         %d from the declared rollback's entry %d on\n", r.Added, r.Declared.Index)
		case r.Old != nil:
			fmt.Fprintf(w, "  new entries:         %d since the earlier checkpoint\n", r.Added)
		default:
			fmt.Fprintf(w, "  new entries:         %d, all of them (first run)\n", r.Added)
		}
	} else {
		fmt.Fprintf(w, "  new entries:         %d checked%s\n", r.Entries, span)
	}
	if len(r.Actions) > 0 {
		actions := make([]protocol.LogAction, 0, len(r.Actions))
		for a := range r.Actions {
			actions = append(actions, a)
		}
		slices.SortFunc(actions, func(a, b protocol.LogAction) int {
			if r.Actions[a] != r.Actions[b] {
				return int(r.Actions[b]) - int(r.Actions[a])
			}
			return strings.Compare(string(a), string(b))
		})
		var parts []string
		for _, a := range actions {
			parts = append(parts, fmt.Sprintf("%s %d", a, r.Actions[a]))
		}
		fmt.Fprintf(w, "  by action (%s): %s\n", scope, strings.Join(parts, ", "))
	}
	fmt.Fprintf(w, "  tombstones:          %d in the %s (erasures, each naming an earlier entry)\n", r.Tombstones, scope)
	fmt.Fprintf(w, "  result:              OK in %s; checkpoint kept in %s\n", took.Round(time.Millisecond), f.state)
}

// logFailure prints the evidence that the log did not verify, and writes
// it to --evidence, so that a regulator can file it: the checkpoints
// involved as the hub signed them (the one kept from the run before, and
// the one served now), and whatever failed against them.
func logFailure(e *env, f logFlags, origin string, state *protocol.LogState, err error) error {
	ev := map[string]any{"log": origin, "hub": f.hub, "checked_at": time.Now().UTC().Format(time.RFC3339), "error": err.Error()}
	for _, kind := range []error{protocol.ErrCheckpointSignature, protocol.ErrCheckpointMalformed, protocol.ErrLogInconsistent, protocol.ErrLogTruncated,
		protocol.ErrLogRootMismatch, protocol.ErrLogEntryMissing, protocol.ErrLogTimeBackwards, protocol.ErrLogBadTombstone, protocol.ErrRollback} {
		if errors.Is(err, kind) {
			ev["kind"] = kind.Error()
		}
	}
	var ce *protocol.CheckpointError
	var ie *protocol.InconsistencyError
	var ee *protocol.EntryError
	w := e.stdout
	if f.asJSON {
		w = io.Discard // the evidence is printed as JSON at the end
	}
	fmt.Fprintf(w, "Exchange log %s at %s: VERIFICATION FAILED\n  %v\n", origin, f.hub, err)
	earlier := func(note []byte) {
		ev["earlier_checkpoint"] = string(note)
		fmt.Fprintf(w, "\nEarlier checkpoint (from %s):\n%s", f.state, note)
	}
	switch {
	case errors.As(err, &ce):
		if state != nil {
			earlier(state.Checkpoint)
		}
		ev["served_checkpoint"] = string(ce.Note)
		fmt.Fprintf(w, "\nCheckpoint as served (it does not verify with the pinned key %s):\n%s", ce.Key, ce.Note)
		if len(ce.Note) > 0 && ce.Note[len(ce.Note)-1] != '\n' {
			fmt.Fprintln(w)
		}
	case errors.As(err, &ie):
		earlier(ie.Old.Note)
		ev["latest_checkpoint"] = string(ie.New.Note)
		fmt.Fprintf(w, "\nLatest checkpoint:\n%s", ie.New.Note)
		if ie.Proof != nil {
			proof := make([]string, len(ie.Proof))
			for i, h := range ie.Proof {
				proof[i] = b64(h)
			}
			ev["proof"] = proof
			fmt.Fprintf(w, "\nConsistency proof %d → %d as served (it does not verify):\n  %s\n", ie.Old.Size, ie.New.Size, strings.Join(proof, "\n  "))
		}
	case errors.As(err, &ee):
		if ee.Earlier != nil {
			earlier(ee.Earlier.Note)
		}
		ev["entry_index"], ev["entry"], ev["latest_checkpoint"] = ee.Index, string(ee.Entry), string(ee.Checkpoint.Note)
		fmt.Fprintf(w, "\nEntry %d as served:\n  %s\nChecked against the latest checkpoint:\n%s", ee.Index, strings.TrimSuffix(string(ee.Entry), "\n"), ee.Checkpoint.Note)
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
	if f.asJSON {
		ev["result"], ev["state"] = "failed", f.state
		// Failing to print does not hide the finding: the status is 1.
		if perr := printJSON(e.stdout, ev); perr != nil {
			fmt.Fprintf(e.stderr, "sparr: printing the evidence failed: %v\n", perr)
		}
	}
	return &exitError{code: 1, err: fmt.Errorf("the exchange log at %s did not verify: %w", f.hub, err)}
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
