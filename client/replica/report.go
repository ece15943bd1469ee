package replica

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// A localCheck is one check the replica answered, as the queue holds it:
// 80 bytes and no pointer, so that the garbage collector never scans the
// queue and an append needs no write barrier. Its token's type and its
// purpose are codes ([checkQueue.code]).
type localCheck struct {
	value        [protocol.TokenSize]byte
	at           int64 // Unix nanoseconds
	epoch        uint32
	typ, purpose code
}

// A code stands for a string a check carries: its token's type, its
// purpose.
type code uint8

// knownNames are the strings a code stands for without a lookup: every
// purpose and identifier type this package knows, in the order of the
// switch in knownCode.
var knownNames = []string{
	api.PurposeCreditApplication, api.PurposeAccountOpening, api.PurposeAddressChange,
	api.PurposePayment, api.PurposeCardIssuance, api.PurposeOther,
	string(protocol.TypePersonalNumber), string(protocol.TypeEmail), string(protocol.TypePhone),
	string(protocol.TypeIBAN), string(protocol.TypeSwedishAccount), string(protocol.TypeBankgiro),
	string(protocol.TypePlusgiro), string(protocol.TypeSwish),
	string(protocol.TypeNorwegianNumber), string(protocol.TypeDanishNumber), string(protocol.TypeFinnishNumber),
}

// knownCode returns the code of one of knownNames.
func knownCode(s string) (code, bool) {
	switch s {
	case api.PurposeCreditApplication:
		return 0, true
	case api.PurposeAccountOpening:
		return 1, true
	case api.PurposeAddressChange:
		return 2, true
	case api.PurposePayment:
		return 3, true
	case api.PurposeCardIssuance:
		return 4, true
	case api.PurposeOther:
		return 5, true
	case string(protocol.TypePersonalNumber):
		return 6, true
	case string(protocol.TypeEmail):
		return 7, true
	case string(protocol.TypePhone):
		return 8, true
	case string(protocol.TypeIBAN):
		return 9, true
	case string(protocol.TypeSwedishAccount):
		return 10, true
	case string(protocol.TypeBankgiro):
		return 11, true
	case string(protocol.TypePlusgiro):
		return 12, true
	case string(protocol.TypeSwish):
		return 13, true
	case string(protocol.TypeNorwegianNumber):
		return 14, true
	case string(protocol.TypeDanishNumber):
		return 15, true
	case string(protocol.TypeFinnishNumber):
		return 16, true
	}
	return 0, false
}

// overflow is the code of every string past the last a queue can name.
const overflow code = 255

// queueParts is how many parts the queue of checks is split into, each
// with its own mutex, the part of a check chosen by its token, so that
// checks of different applicants made at once rarely wait for one another.
const queueParts = 16

// keepCap is how many checks' room the queue's arrays keep from one report
// to the next, so that neither a check nor a report allocates an array: a
// few seconds' checks at a busy member's rate, spread over the parts. A
// larger array is kept only if it was at least half full, so that one
// grown during an outage goes to the garbage collector after the next
// report.
const keepCap = 4 * api.MaxReplicaChecks

// checkQueue holds the checks the replica answered until they are
// reported. A check counts itself against the bound (an atomic add) and
// takes a short append under its part's mutex; a report takes every part
// at once, orders the checks by time, and keeps what it could not report
// for the next report.
type checkQueue struct {
	// flushMu serializes reports, and guards retry, spare and
	// droppedLogged.
	flushMu sync.Mutex
	// retry holds what the last report could not report, to go first.
	retry []localCheck
	// spare is the array of the last report that reported everything,
	// for the next to fill (see keepCap).
	spare []localCheck
	// droppedLogged is how many drops the reporter has logged.
	droppedLogged uint64

	// namesMu guards names and byName: the strings other than knownNames
	// that checks carried (an identifier type or a purpose this package
	// does not know), whose codes follow the known ones.
	namesMu sync.Mutex
	names   []string
	byName  map[string]code

	// pending counts the checks recorded and not yet logged or refused,
	// in the parts or taken by a report; bound bounds it.
	bound   int64
	pending atomic.Int64
	// sending counts the checks taken by reports (retry included) and not
	// yet logged or refused.
	sending           atomic.Int64
	reported, refused atomic.Uint64

	parts [queueParts]queuePart
}

// A queuePart is one part of a checkQueue, padded to two cache lines so
// that no two parts share one.
type queuePart struct {
	mu      sync.Mutex
	queued  []localCheck
	dropped uint64 // checks of the part's tokens dropped for want of room
	_       [128 - 8 - 24 - 8]byte
}

// init makes the queue hold at most bound checks.
func (q *checkQueue) init(bound int) {
	q.bound = int64(bound)
}

// code returns the code of s.
func (q *checkQueue) code(s string) code {
	if c, ok := knownCode(s); ok {
		return c
	}
	q.namesMu.Lock()
	defer q.namesMu.Unlock()
	if c, ok := q.byName[s]; ok {
		return c
	}
	if len(knownNames)+len(q.names) >= int(overflow) {
		return overflow
	}
	if q.byName == nil {
		q.byName = map[string]code{}
	}
	c := code(len(knownNames) + len(q.names))
	q.names = append(q.names, s)
	q.byName[s] = c
	return c
}

// name returns the string c stands for; the code past the last a queue
// can name stands for "", which the hub refuses.
func (q *checkQueue) name(c code) string {
	if int(c) < len(knownNames) {
		return knownNames[c]
	}
	q.namesMu.Lock()
	defer q.namesMu.Unlock()
	if i := int(c) - len(knownNames); c != overflow && i < len(q.names) {
		return q.names[i]
	}
	return ""
}

// check returns the queue's form of a check.
func (q *checkQueue) check(purpose string, tok protocol.Token, at int64) localCheck {
	return localCheck{value: tok.Value, at: at, epoch: tok.Epoch, typ: q.code(string(tok.Type)), purpose: q.code(purpose)}
}

// token returns c's token.
func (q *checkQueue) token(c *localCheck) protocol.Token {
	return protocol.Token{Type: protocol.IdentifierType(q.name(c.typ)), Epoch: c.epoch, Value: c.value}
}

// add records c, or counts it dropped if the queue is full.
func (q *checkQueue) add(c localCheck) {
	p := &q.parts[c.value[0]%queueParts]
	full := q.pending.Add(1) > q.bound
	p.mu.Lock()
	if full {
		p.dropped++
	} else {
		p.queued = append(p.queued, c)
	}
	p.mu.Unlock()
	if full {
		q.pending.Add(-1)
	}
}

// take hands the queued checks to a report, what the last report could
// not report first, the others in order of time, and says how many
// checks were dropped for want of room since the last take. The caller
// holds flushMu.
func (q *checkQueue) take() (taken []localCheck, newlyDropped uint64) {
	taken = q.retry
	if taken == nil {
		taken = q.spare[:0]
	}
	q.retry, q.spare = nil, nil
	retried, dropped := len(taken), uint64(0)
	for i := range q.parts {
		p := &q.parts[i]
		p.mu.Lock()
		taken = append(taken, p.queued...)
		q.sending.Add(int64(len(p.queued)))
		if cap(p.queued) > max(keepCap/queueParts, 2*len(p.queued)) {
			p.queued = nil
		} else {
			p.queued = p.queued[:0]
		}
		dropped += p.dropped
		p.mu.Unlock()
	}
	slices.SortStableFunc(taken[retried:], func(a, b localCheck) int { return cmp.Compare(a.at, b.at) })
	newlyDropped, q.droppedLogged = dropped-q.droppedLogged, dropped
	return taken, newlyDropped
}

// done counts n taken checks as logged by the hub (or refused, if
// refused), freeing their room in the queue.
func (q *checkQueue) done(n int, refused bool) {
	if refused {
		q.refused.Add(uint64(n))
	} else {
		q.reported.Add(uint64(n))
	}
	q.sending.Add(-int64(n))
	q.pending.Add(-int64(n))
}

// giveBack keeps the checks of taken that a report could not report, rest,
// for the next, in front; they still count against the bound. If it
// reported them all, it keeps taken's array for the next. The caller holds
// flushMu.
func (q *checkQueue) giveBack(taken, rest []localCheck) {
	switch {
	case len(rest) > 0:
		q.retry = rest
	case cap(taken) <= max(keepCap, 2*len(taken)):
		q.spare = taken[:0]
	}
}

// counts returns how many checks are in the queue or in a report under
// way, and how many were dropped for want of room.
func (q *checkQueue) counts() (unreported int, dropped uint64) {
	unreported = int(q.sending.Load())
	for i := range q.parts {
		p := &q.parts[i]
		p.mu.Lock()
		unreported += len(p.queued)
		dropped += p.dropped
		p.mu.Unlock()
	}
	return unreported, dropped
}

func (q *checkQueue) unreported() int {
	n, _ := q.counts()
	return n
}

func (q *checkQueue) stats(s *Stats) {
	s.ChecksUnreported, s.ChecksDropped = q.counts()
	s.ChecksReported, s.ChecksRefused = q.reported.Load(), q.refused.Load()
}

// Flush reports to the hub every check the replica answered before it was
// called and has not yet reported, in order of time, in reports of at
// most api.MaxReplicaChecks checks, and returns once the hub has logged
// them or with the error that stopped it. What it could not report stays
// queued, ahead of later checks, and the next Flush (or [Replica.Run])
// reports it: so a report whose answer was lost on the way back is sent
// again, and the hub may log those checks twice, but no check is lost
// while the replica is open.
//
// A report the hub refuses as not acceptable (a purpose it does not know,
// a token of an old epoch, a check older than a week) is never sent again
// as it was: Flush drops the checks the hub names (a hub names every check
// at fault) and reports the rest. A refusal that names none (from a hub
// or a proxy that does not say) is narrowed down by halves: the report is
// sent again in two, and so on, until the check at fault is alone, then
// it is dropped. Flush logs what it dropped (purposes and times, never
// tokens) and counts it in [Stats]. So bad checks cost a few requests, and
// never hold up or take down the good ones. Any other failure (the hub
// out of reach, a quota spent, a role missing) keeps every check queued.
//
// Call Flush before [Replica.Close]; a member that runs [Replica.Run] calls
// it after Run has returned.
func (r *Replica) Flush(ctx context.Context) error {
	return r.flush(ctx, r.cfg.Client.ReportReplicaChecks)
}

// report sends one report of checks.
type report func(context.Context, []api.ReplicaCheck) (*api.ReplicaChecksResponse, error)

// flush is Flush, with send for the hub's report call.
func (r *Replica) flush(ctx context.Context, send report) error {
	r.checks.flushMu.Lock()
	defer r.checks.flushMu.Unlock()
	taken, dropped := r.checks.take()
	if dropped > 0 {
		r.log.Warn("checks answered but not recorded for reporting: the queue of unreported checks was full; is the hub out of reach?",
			"dropped", dropped, "max_unreported", r.cfg.MaxUnreported)
	}
	rest := taken
	defer func() { r.checks.giveBack(taken, rest) }()
	var batch []api.ReplicaCheck
	// suspect is how many checks at the front of rest hold one the hub
	// refused without naming it: the next report holds the first half of
	// them, until the check at fault is alone.
	suspect := 0
	for len(rest) > 0 {
		n := min(len(rest), api.MaxReplicaChecks)
		if suspect > 0 {
			n = (suspect + 1) / 2
		}
		batch = slices.Grow(batch[:0], n)[:n]
		for i, c := range rest[:n] {
			batch[i] = api.ReplicaCheck{Token: r.checks.token(&c).String(), Purpose: r.checks.name(c.purpose), At: time.Unix(0, c.at).UTC()}
		}
		_, err := send(ctx, batch)
		if err == nil {
			rest = rest[n:]
			r.checks.done(n, false)
			suspect = max(suspect-n, 0) // the check at fault is in the other half
			continue
		}
		p, ok := refusal(err)
		if !ok {
			return fmt.Errorf("report %d checks: %w", len(rest), err)
		}
		bad := p.named(n)
		switch {
		case bad == nil && n > 1:
			suspect = n
			continue
		case bad == nil:
			bad = []int{0}
		}
		r.dropped(rest, bad, n, err)
		for _, i := range slices.Backward(bad) {
			rest = slices.Delete(rest, i, i+1)
		}
		r.checks.done(len(bad), true)
		suspect = 0
	}
	return nil
}

// dropped logs the checks at indexes bad of a report of the first n of
// rest, which the hub refused with err: their purposes and times, never
// their tokens.
func (r *Replica) dropped(rest []localCheck, bad []int, n int, err error) {
	purposes := make([]string, 0, len(bad))
	for _, i := range bad {
		if q := strconv.Quote(r.checks.name(rest[i].purpose)); !slices.Contains(purposes, q) {
			purposes = append(purposes, q)
		}
	}
	r.log.Warn("the hub refused a report of checks: dropped the checks at fault, never to be reported",
		"dropped", len(bad), "report", n, "purposes", purposes,
		"from", time.Unix(0, rest[bad[0]].at).UTC().Format(time.RFC3339), "to", time.Unix(0, rest[bad[len(bad)-1]].at).UTC().Format(time.RFC3339),
		"error", err)
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

// A rejection is the hub's refusal of a report's content.
type rejection struct{ *client.Problem }

// refusal reports whether err is the hub refusing a report as not
// acceptable, which sending it again would not change.
func refusal(err error) (rejection, bool) {
	var p *client.Problem
	if !errors.As(err, &p) {
		return rejection{}, false
	}
	switch p.Slug() {
	case protocol.ProblemMalformedRequest.Slug(), protocol.ProblemInvalidToken.Slug(),
		protocol.ProblemValidation.Slug(), protocol.ProblemPayloadTooLarge.Slug():
		return rejection{p}, true
	}
	return rejection{}, false
}

// checkField matches the field of one check in a problem's pointer:
// "checks[3].purpose", or "/checks/3/purpose" as a JSON pointer.
var checkField = regexp.MustCompile(`^/?checks(?:\[(\d+)\]|/(\d+))(?:$|[./])`)

// named returns the indexes, in order, of the checks of an n-check report
// the problem names; nil if it names none, or one that is not there.
func (p rejection) named(n int) []int {
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
