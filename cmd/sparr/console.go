package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/internal/console"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server/keyring"
)

// keyList is a flag given once per key (--witness KEY --witness KEY); its
// variable holds the keys separated by commas.
type keyList []string

func (l *keyList) String() string { return strings.Join(*l, ",") }

func (l *keyList) Set(v string) error {
	for _, k := range strings.Split(v, ",") {
		if k = strings.TrimSpace(k); k != "" {
			*l = append(*l, k)
		}
	}
	return nil
}

// regulatorFlags are the flags of the commands that read the log as a
// regulator: the hub, the member and its key, the log key and witnesses.
type regulatorFlags struct {
	hub, member, key, logKey string
	witnesses                keyList
	quorum                   int
}

func (r *regulatorFlags) add(fs *flagSet, withHub bool) {
	if withHub {
		fs.StringVar(&r.hub, "hub", "", "the hub's `URL`")
		fs.StringVar(&r.member, "member", "", "your member `ID`, with the regulator role")
		fs.StringVar(&r.key, "key", "", "your member's private key, a JWK `FILE`")
	}
	fs.StringVar(&r.logKey, "log-key", "", "the log's public `KEY` (<origin>+<hash>+<key>), obtained out of band, or a file holding it")
	fs.Var(&r.witnesses, "witness", "a witness's public `KEY` (<name>+<hash>+<key>), or a file holding it; repeat for each witness (in the variable, separate them with commas)")
	fs.IntVar(&r.quorum, "quorum", 0, "how many of the witnesses must have cosigned a checkpoint (`N`; default: all given)")
}

// keys reads the log key and the witnesses' keys, and checks the quorum.
func (r *regulatorFlags) keys(name string) (note.Verifier, []note.Verifier, int, error) {
	if r.logKey == "" {
		return nil, nil, 0, usagef("%s: --log-key is required", name)
	}
	logKey, err := protocol.NewLogVerifier(readKeyArg(r.logKey))
	if err != nil {
		return nil, nil, 0, usagef("%s: --log-key: %v", name, err)
	}
	var ws []note.Verifier
	for _, k := range r.witnesses {
		w, err := console.ParseWitnessKey(readKeyArg(k))
		if err != nil {
			return nil, nil, 0, usagef("%s: --witness: %v", name, err)
		}
		ws = append(ws, w)
	}
	q := r.quorum
	if q == 0 {
		q = len(ws)
	}
	if q < 0 || q > len(ws) {
		return nil, nil, 0, usagef("%s: --quorum %d: want 1 to the %d witnesses given", name, r.quorum, len(ws))
	}
	return logKey, ws, q, nil
}

// connect reads the member's key and connects to the hub.
func (r *regulatorFlags) connect(ctx context.Context, name string) (*client.Client, error) {
	for _, f := range []struct{ flag, v string }{{"hub", r.hub}, {"member", r.member}, {"key", r.key}} {
		if f.v == "" {
			return nil, usagef("%s: --%s is required", name, f.flag)
		}
	}
	signer, err := keyring.LoadOperator(r.key)
	if err != nil {
		return nil, fmt.Errorf("--key: %w", err)
	}
	return connect(ctx, r.hub, r.member, signer, client.Retry{Attempts: logFetchAttempts, Backoff: logRetryBackoff, MaxWait: logRetryMaxWait, AnsweredOnly: true})
}

// readKeyArg returns a key given as text, or read from the file it names.
func readKeyArg(v string) string {
	if b, err := os.ReadFile(v); err == nil {
		return strings.TrimSpace(string(b))
	}
	return v
}

func runConsole(ctx context.Context, e *env, name string, args []string) error {
	fs := e.flags(name, "--hub URL --member ID --key FILE --log-key KEY [--witness KEY ...] [--quorum N] [--listen ADDR]",
		"Console serves the regulator's console on loopback, on this machine, and prints its URL: an\n"+
			"overview of the exchange log and its members, charts, a log browser and exports. It reads the\n"+
			"hub through its API with your member's key and verifies everything it shows here: the\n"+
			"checkpoint with the pinned log key (and the cosignatures of the witnesses given), each entry\n"+
			"with its inclusion proof, the charts' entries with the tree's hash tiles. Stop it with Ctrl-C.")
	var r regulatorFlags
	r.add(fs, true)
	var listen string
	var days, window int
	fs.StringVar(&listen, "listen", "127.0.0.1:0", "the loopback `ADDR` to serve on (port 0: any free port)")
	fs.IntVar(&days, "days", 30, "how many `DAYS` back the charts count")
	fs.IntVar(&window, "window", 100_000, "the most `ENTRIES` the charts count (the latest)")
	rest, err := fs.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(name, rest); err != nil {
		return err
	}
	logKey, ws, q, err := r.keys(name)
	if err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(listen)
	if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
		return usagef("%s: --listen %q: want a loopback address, such as 127.0.0.1:8088", name, listen)
	}
	c, err := r.connect(ctx, name)
	if err != nil {
		return err
	}
	con, err := console.New(console.Config{Client: c, HubURL: r.hub, LogKey: logKey, Witnesses: ws, Quorum: q, Days: days, MaxWindow: window})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	srv := &http.Server{Handler: con.Handler(), ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 5 * time.Minute, IdleTimeout: time.Minute}
	fmt.Fprintf(e.stdout, "Spärr console for %s: open http://%s/login?token=%s\n", r.hub, ln.Addr(), con.Token())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	case err := <-errc:
		return err
	}
}

func runLogExport(ctx context.Context, e *env, name string, args []string) error {
	fs := e.flags(name, "--hub URL --member ID --key FILE --log-key KEY [--witness KEY ...] [--by MEMBER] [--action ACTION] [--from TIME] [--to TIME] --out FILE",
		"Export writes the entries a filter selects as a self-verifying bundle: the hub's latest\n"+
			"checkpoint (verified here with the log key, and the witnesses' cosignatures) and each entry\n"+
			"with its inclusion proof, checked before it is written. sparr log verify-bundle checks a\n"+
			"bundle offline; docs/regulator.md describes the format.")
	var r regulatorFlags
	r.add(fs, true)
	var by, action, from, to, out string
	var max int
	fs.StringVar(&by, "by", "", "only the entries of this `MEMBER`")
	fs.StringVar(&action, "action", "", "only the entries of this `ACTION`")
	fs.StringVar(&from, "from", "", "only entries at or after `TIME` (RFC 3339, or a date)")
	fs.StringVar(&to, "to", "", "only entries before `TIME` (RFC 3339, or a date)")
	fs.StringVar(&out, "out", "", "the bundle's `FILE`")
	fs.IntVar(&max, "max", 10_000, "the most `ENTRIES` to export (the first)")
	rest, err := fs.parse(args)
	if err != nil {
		return err
	}
	if err := noArgs(name, rest); err != nil {
		return err
	}
	if out == "" {
		return usagef("%s: --out is required", name)
	}
	logKey, ws, q, err := r.keys(name)
	if err != nil {
		return err
	}
	f, err := console.ParseFilter(by, action, from, to)
	if err != nil {
		return usagef("%s: %v", name, err)
	}
	c, err := r.connect(ctx, name)
	if err != nil {
		return err
	}
	b, err := console.Export(ctx, console.Config{Client: c, HubURL: r.hub, LogKey: logKey, Witnesses: ws, Quorum: q, MaxExport: max}, f)
	if err != nil {
		return exportFailure(err)
	}
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(out, append(data, '\n')); err != nil {
		return err
	}
	more := ""
	if b.Truncated {
		more = fmt.Sprintf(" (the first %d; more matched: narrow the filter or raise --max)", len(b.Entries))
	}
	fmt.Fprintf(e.stdout, "%d entries%s exported to %s, proved in the checkpoint of size %d\n", len(b.Entries), more, out, checkpointSize(b))
	return nil
}

// exportFailure gives a verification failure exit status 1, as log
// verify does.
func exportFailure(err error) error {
	var ce *protocol.CheckpointError
	var qe *console.QuorumError
	var be *console.BundleError
	if errors.As(err, &ce) || errors.As(err, &qe) || errors.As(err, &be) || errors.Is(err, console.ErrEntryMismatch) {
		return &exitError{code: 1, err: fmt.Errorf("verification failed: %w", err)}
	}
	return &exitError{code: exitCouldNotCheck, err: err}
}

func checkpointSize(b *console.Bundle) uint64 {
	cp, err := protocol.ParseCheckpoint([]byte(strings.SplitN(b.Checkpoint, "\n\n", 2)[0] + "\n"))
	if err != nil {
		return 0
	}
	return cp.Size
}

func runLogVerifyBundle(ctx context.Context, e *env, name string, args []string) error {
	fs := e.flags(name, "FILE --log-key KEY [--witness KEY ... --quorum N]",
		"Verify-bundle checks a bundle written by sparr log export (or the console's export) offline:\n"+
			"its checkpoint against the log key and, with --witness, a quorum of cosignatures; each entry\n"+
			"against its inclusion proof and the bundle's filter.\n\n"+
			"Exit status: 0 the bundle verified; 1 it did not (what failed is printed); 2 a usage error or\n"+
			"a file that is not a bundle.")
	var r regulatorFlags
	r.add(fs, false)
	rest, err := fs.parse(args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usagef("%s: give one bundle FILE; run %s -h", name, program(name))
	}
	logKey, ws, q, err := r.keys(name)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(rest[0])
	if err != nil {
		return usagef("%s: %v", name, err)
	}
	b, err := console.ParseBundle(data)
	if err != nil {
		return usagef("%s: %s: %v", name, rest[0], err)
	}
	report, err := b.Verify(logKey, ws, q)
	if err != nil {
		fmt.Fprintf(e.stdout, "Bundle %s: VERIFICATION FAILED\n  %v\n", rest[0], err)
		return &exitError{code: 1, err: fmt.Errorf("bundle %s did not verify: %w", rest[0], err)}
	}
	cp := report.Checkpoint
	fmt.Fprintf(e.stdout, "Bundle %s: verified\n  log:         %s\n  checkpoint:  size %d, root %s (signed by the log key", rest[0], cp.Origin, cp.Size, cp.Root)
	if len(ws) > 0 {
		fmt.Fprintf(e.stdout, "; cosigned by %d of %d witnesses, quorum %d", cp.Cosigned(), len(ws), q)
	}
	fmt.Fprintf(e.stdout, ")\n  entries:     %d, each proved in the checkpoint's tree and selected by the filter\n", len(report.Entries))
	if b.Truncated {
		fmt.Fprintf(e.stdout, "  note:        the export was cut short: more entries matched the filter\n")
	}
	return nil
}
