package replica

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// A localCheck is one check the replica answered: 112 bytes.
type localCheck struct {
	tok     protocol.Token
	purpose string
	at      int64 // Unix nanoseconds
}

// keepCap is the size of a queue's array that a report always hands back
// for the next checks to fill, so that a check does not allocate: a few
// seconds' checks at a busy member's rate. A larger array is handed back
// only if it was at least half full, so that one grown during an outage
// goes to the garbage collector after the next report.
const keepCap = 4 * api.MaxReplicaChecks

// checkQueue holds the checks the replica answered until they are
// reported. A check takes a short mutex-guarded append; a report takes the
// whole queue at once and hands back what it could not report.
type checkQueue struct {
	// flushMu serializes reports, so that checks reach the hub in order.
	flushMu sync.Mutex

	mu      sync.Mutex
	max     int
	queued  []localCheck // recorded, not yet taken by a report
	sending int          // taken by the report under way, not yet logged
	spare   []localCheck // an empty array for queued to fill next
	// What became of checks since Open.
	reported, dropped, refused uint64
	// dropped as last logged, by the reporter.
	droppedLogged uint64
}

// init makes the queue hold at most max checks, with room for the first
// few, so that a replica's first checks do not allocate either.
func (q *checkQueue) init(max int) {
	q.max, q.queued = max, make([]localCheck, 0, min(max, 256))
}

// add records c, or counts it dropped if the queue is full.
func (q *checkQueue) add(c localCheck) {
	q.mu.Lock()
	if len(q.queued)+q.sending < q.max {
		q.queued = append(q.queued, c)
	} else {
		q.dropped++
	}
	q.mu.Unlock()
}

// take hands the queued checks to a report, and says how many checks were
// dropped for want of room since the last take.
func (q *checkQueue) take() (taken []localCheck, newlyDropped uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	taken, q.queued, q.spare = q.queued, q.spare[:0], nil
	q.sending = len(taken)
	newlyDropped, q.droppedLogged = q.dropped-q.droppedLogged, q.dropped
	return taken, newlyDropped
}

// done counts n taken checks as logged by the hub (or refused, if
// refused), freeing their room in the queue.
func (q *checkQueue) done(n int, refused bool) {
	q.mu.Lock()
	q.sending -= n
	if refused {
		q.refused += uint64(n)
	} else {
		q.reported += uint64(n)
	}
	q.mu.Unlock()
}

// giveBack puts the checks a report could not report back in front of the
// queue, and keeps a small array for the next checks.
func (q *checkQueue) giveBack(array, rest []localCheck) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sending = 0
	if len(rest) > 0 {
		q.queued = append(slices.Clip(rest), q.queued...)
		return
	}
	if cap(array) <= max(keepCap, 2*len(array)) {
		q.spare = array[:0]
	}
}

func (q *checkQueue) unreported() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queued) + q.sending
}

func (q *checkQueue) stats(s *Stats) {
	q.mu.Lock()
	defer q.mu.Unlock()
	s.ChecksUnreported = len(q.queued) + q.sending
	s.ChecksReported, s.ChecksDropped, s.ChecksRefused = q.reported, q.dropped, q.refused
}

// Flush reports to the hub every check the replica answered before it was
// called and has not yet reported, in order, in reports of at most
// api.MaxReplicaChecks checks, and returns once the hub has logged them or
// with the error that stopped it. What it could not report stays queued,
// in order, and the next Flush (or [Replica.Run]) reports it: so a report
// whose answer was lost on the way back is sent again, and the hub may log
// those checks twice, but no check is lost while the replica is open.
//
// A report the hub refuses as not acceptable (a purpose it does not know,
// a token of an old epoch, a check older than a week) is never sent again
// as it was: Flush drops the check the hub names and reports the rest, or
// drops the whole report if the hub names none, or has refused it three
// times already; it logs what it dropped (purposes and times, never
// tokens) and counts it in [Stats]. So one bad check never holds up the
// others. Any other failure (the hub out of reach, a quota spent, a role
// missing) keeps every check queued.
//
// Call Flush before [Replica.Close]; a member that runs [Replica.Run] calls
// it after Run has returned.
func (r *Replica) Flush(ctx context.Context) error {
	return r.flush(ctx, r.cfg.Client.ReportReplicaChecks)
}

// report sends one report of checks.
type report func(context.Context, []api.ReplicaCheck) (*api.ReplicaChecksResponse, error)

// maxRefusals is how many refusals that name checks one report may meet,
// each dropping the checks named, before the next drops it whole: a hub
// that refuses check after check (a purpose the SDK's caller always
// misspells, a clock a week off) costs a few requests per report, not one
// per check.
const maxRefusals = 3

// flush is Flush, with send for the hub's report call.
func (r *Replica) flush(ctx context.Context, send report) error {
	r.checks.flushMu.Lock()
	defer r.checks.flushMu.Unlock()
	taken, dropped := r.checks.take()
	if dropped > 0 {
		r.log.Warn("checks answered but not recorded for reporting: the queue of unreported checks was full; is the hub out of reach?",
			"dropped", dropped, "max_unreported", r.cfg.MaxUnreported)
	}
	array, rest := taken, taken
	defer func() { r.checks.giveBack(array, rest) }()
	refusals := 0
	for len(rest) > 0 {
		n := min(len(rest), api.MaxReplicaChecks)
		batch := make([]api.ReplicaCheck, n)
		for i, c := range rest[:n] {
			batch[i] = api.ReplicaCheck{Token: c.tok.String(), Purpose: c.purpose, At: time.Unix(0, c.at).UTC()}
		}
		_, err := send(ctx, batch)
		if err == nil {
			rest, refusals = rest[n:], 0
			r.checks.done(n, false)
			continue
		}
		p, ok := refusal(err)
		if !ok {
			return fmt.Errorf("report %d checks: %w", len(rest), err)
		}
		refusals++
		bad := p.named(n)
		if bad == nil || refusals > maxRefusals {
			bad, refusals = make([]int, n), 0
			for i := range bad {
				bad[i] = i
			}
		}
		purposes := make([]string, 0, len(bad))
		for _, i := range bad {
			if q := strconv.Quote(rest[i].purpose); !slices.Contains(purposes, q) {
				purposes = append(purposes, q)
			}
		}
		r.log.Warn("the hub refused a report of checks: dropped the checks at fault, never to be reported",
			"dropped", len(bad), "report", n, "purposes", purposes,
			"from", time.Unix(0, rest[bad[0]].at).UTC().Format(time.RFC3339), "to", time.Unix(0, rest[bad[len(bad)-1]].at).UTC().Format(time.RFC3339),
			"error", err)
		for _, i := range slices.Backward(bad) {
			rest = slices.Delete(rest, i, i+1)
		}
		r.checks.done(len(bad), true)
	}
	return nil
}

// reportEvery flushes every ReportInterval until ctx is done, waiting twice
// as long after each failure, up to 16 intervals.
func (r *Replica) reportEvery(ctx context.Context) {
	wait := r.cfg.ReportInterval
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := r.Flush(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			wait = min(2*wait, 16*r.cfg.ReportInterval)
			r.log.Warn("reporting checks to the hub failed; they stay queued", "unreported", r.checks.unreported(), "next_try", wait.String(), "error", err)
		default:
			wait = r.cfg.ReportInterval
		}
		t.Reset(wait)
	}
}

// A refused report is the hub's refusal of a report's content.
type refused struct{ *client.Problem }

// refusal reports whether err is the hub refusing a report as not
// acceptable, which sending it again would not change.
func refusal(err error) (refused, bool) {
	var p *client.Problem
	if !errors.As(err, &p) {
		return refused{}, false
	}
	switch p.Slug() {
	case protocol.ProblemMalformedRequest.Slug(), protocol.ProblemInvalidToken.Slug(),
		protocol.ProblemValidation.Slug(), protocol.ProblemPayloadTooLarge.Slug():
		return refused{p}, true
	}
	return refused{}, false
}

// checkField matches the field of one check in a problem's pointer:
// "checks[3].purpose", or "/checks/3/purpose" as a JSON pointer.
var checkField = regexp.MustCompile(`^/?checks(?:\[(\d+)\]|/(\d+))(?:$|[./])`)

// named returns the indexes, in order, of the checks of an n-check report
// the problem names; nil if it names none, or one that is not there.
func (p refused) named(n int) []int {
	var out []int
	for _, f := range p.Errors {
		m := checkField.FindStringSubmatch(f.Pointer)
		if m == nil {
			return nil
		}
		i, err := strconv.Atoi(m[1] + m[2])
		if err != nil || i >= n {
			return nil
		}
		if !slices.Contains(out, i) {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return out
}
