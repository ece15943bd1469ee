package bench

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// noticeFlags is how many flags bank A places for the notices scenario;
// bank B's checks take them in turn, each a new check with its own notice.
const noticeFlags = 20

// runNotices: how long the consumer's side of a check takes to travel,
// with [Config.NoticeMembers] members on loopback (100 by default):
//
//   - access notice: from just before bank B sends its check
//     (POST /v1/check) until the subject-checked record reaches bank A's
//     endpoint. This is an upper bound of "from the check acknowledged":
//     the hub wakes its dispatcher once the check's commit is durable,
//     before it writes the answer, so the notice often reaches bank A
//     before bank B has read its answer (timed from the answer, the
//     latency is then negative, and a median of it says nothing);
//   - denial: from just before bank A sends its signed denial
//     (POST /v1/checks/{id}/denial) until the check-denied record reaches
//     bank B's endpoint.
//
// Each is timed one at a time, the flags placed (and fanned out to every
// member) before the runs start, so that a notice never queues behind a
// placement. The baseline, alternating with the hub in the same run, is
// the raw fan-out of the same record bytes to their audience: one raw
// bbolt commit (one fsync), then one POST to the one receiver, timed from
// just before the commit.
func runNotices(ctx context.Context, cfg *Config) ([]Row, error) {
	nt := &notices{events: cfg.Events, members: cfg.NoticeMembers}
	defer nt.close()
	if err := nt.setUp(cfg); err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Progress, "   %d members on loopback, %d checks and denials a run, one at a time\n", nt.members, nt.events)
	sys, base, err := alternate(cfg.Runs,
		func() (map[string]float64, error) { return nt.hubRun(ctx) },
		func() (map[string]float64, error) { return nt.rawRun(ctx) })
	if err != nil {
		return nil, err
	}
	const baseName = "raw fan-out of the same record to its one receiver, after one raw bbolt commit"
	return []Row{
		row("access notice (check sent → at bank A), p50", "ms", false, sys, base, "notice-p50", baseName),
		row("access notice (check sent → at bank A), p99", "ms", false, sys, base, "notice-p99", baseName),
		row("denial (bank A's denial sent → at bank B), p50", "ms", false, sys, base, "denial-p50", baseName),
		row("denial (bank A's denial sent → at bank B), p99", "ms", false, sys, base, "denial-p99", baseName),
	}, nil
}

// notices is what both sides of [runNotices] share.
type notices struct {
	events  int
	members int // on loopback, each with its endpoint: bank A (which placed the flags), bank B (which checks), the rest subscribed to every flag event

	h            *hub
	bankA, bankB *member
	ca, cb       *counter
	others       []*counter
	tokens       []protocol.Token // flagged by bank A, checked in turn
	flags        []string         // their flag ids
	next         int              // checks made so far
	raw          *bolt.DB
	client       *http.Client
	seq          uint64

	noticeSamples, denialSamples [][]byte // record bytes the hub delivered
	run                          int
}

// setUp starts the hub with bank A, bank B and the other members, each
// with a counter as its endpoint, and has bank A place [noticeFlags]
// flags, waiting until every member has every placement.
func (nt *notices) setUp(cfg *Config) error {
	var err error
	if nt.h, err = startHub(cfg); err != nil {
		return err
	}
	if nt.bankA, nt.ca, err = nt.subscribed("bank-a", api.RoleFlag, api.RoleCheck); err != nil {
		return err
	}
	if nt.bankB, nt.cb, err = nt.subscribed("bank-b", api.RoleCheck); err != nil {
		return err
	}
	if nt.others, err = subscribe(nt.h, nt.members-2); err != nil {
		return err
	}
	if err := verified(append([]*counter{nt.ca, nt.cb}, nt.others...)); err != nil {
		return err
	}
	epoch := nt.h.keys.Token.Epoch()
	n := noticeFlags
	for range n {
		tok := randomToken(epoch)
		body, err := nt.bankA.placeFlag(tok)
		if err != nil {
			return err
		}
		resp, err := nt.bankA.place(context.Background(), body)
		if err != nil {
			return err
		}
		var placed api.WriteResponse
		if err := json.Unmarshal(resp, &placed); err != nil {
			return err
		}
		nt.tokens, nt.flags = append(nt.tokens, tok), append(nt.flags, placed.Flag.ID)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for _, c := range append([]*counter{nt.ca, nt.cb}, nt.others...) {
		for c.n.Load() < int64(n+1) {
			if time.Now().After(deadline) {
				return fmt.Errorf("%s has %d of %d placements after 5 minutes", c.member, c.n.Load()-1, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if nt.raw, err = bolt.Open(filepath.Join(cfg.Dir, "notices.db"), 0o600, &bolt.Options{Timeout: time.Second}); err != nil {
		return err
	}
	nt.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
	return nil
}

// subscribed adds member id with roles and a counter as its endpoint.
func (nt *notices) subscribed(id string, roles ...api.Role) (*member, *counter, error) {
	c, err := newCounter()
	if err != nil {
		return nil, nil, err
	}
	m, err := nt.h.addMember(id, roles...)
	if err != nil {
		c.close()
		return nil, nil, err
	}
	c.member = id
	if _, _, err := m.c.RegisterEndpoint(context.Background(), c.url); err != nil {
		c.close()
		return nil, nil, err
	}
	return m, c, nil
}

// verified waits until every counter has had its verification event.
func verified(cs []*counter) error {
	deadline := time.Now().Add(time.Minute)
	for _, c := range cs {
		for c.n.Load() == 0 {
			if time.Now().After(deadline) {
				return fmt.Errorf("endpoint of %s not verified within a minute", c.member)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return nil
}

func (nt *notices) close() {
	if nt.client != nil {
		nt.client.CloseIdleConnections()
	}
	if nt.raw != nil {
		nt.raw.Close()
		os.Remove(nt.raw.Path())
	}
	closeAll(nt.others)
	for _, c := range []*counter{nt.ca, nt.cb} {
		if c != nil {
			c.close()
		}
	}
	if nt.h != nil {
		nt.h.close()
	}
}

// hubRun is one system run: events checks by bank B, each answered by
// bank A's denial, one at a time.
func (nt *notices) hubRun(ctx context.Context) (map[string]float64, error) {
	var notices, denials []time.Duration
	for range nt.events {
		i := nt.next % len(nt.tokens)
		tok, flagID := nt.tokens[i], nt.flags[i]
		nt.next++
		t0 := time.Now()
		checked, err := nt.bankB.c.Check(ctx, api.PurposeCreditApplication, tok)
		if err != nil {
			return nil, err
		}
		n, err := nt.h.st.Notice(checked.ID, flagID)
		if err != nil {
			return nil, fmt.Errorf("notice of check %s: %w", checked.ID, err)
		}
		at, err := nt.ca.wait(ctx, time.Minute, protocol.DeliveryID(n.Record.ID, nt.bankA.id))
		if err != nil {
			return nil, err
		}
		notices = append(notices, at.Sub(t0))

		auth := protocol.ConsumerAuth{Method: protocol.AuthBankID, AuthenticatedAt: protocol.NewNumericDate(time.Now()), Level: protocol.LevelHigh, Reference: "bench-" + newJTI()}
		s, err := nt.bankA.c.Sign(ctx, protocol.DenyCheck{CheckID: checked.ID, FlagID: flagID, ConsumerAuth: &auth})
		if err != nil {
			return nil, err
		}
		t0 = time.Now()
		res, err := nt.bankA.c.Send(ctx, s)
		if err != nil {
			return nil, err
		}
		at, err = nt.cb.wait(ctx, time.Minute, protocol.DeliveryID(res.Record.ID, nt.bankB.id))
		if err != nil {
			return nil, err
		}
		denials = append(denials, at.Sub(t0))
		if len(nt.noticeSamples) < nt.events {
			nt.noticeSamples = append(nt.noticeSamples, []byte(n.Record.JWS))
			nt.denialSamples = append(nt.denialSamples, []byte(res.RecordJWS))
		}
	}
	return map[string]float64{
		"notice-p50": percentile(notices, 50), "notice-p99": percentile(notices, 99),
		"denial-p50": percentile(denials, 50), "denial-p99": percentile(denials, 99),
	}, nil
}

// rawRun is one baseline run: each sample notice and denial committed to
// a raw bbolt file and POSTed to its one receiver, one at a time.
func (nt *notices) rawRun(ctx context.Context) (map[string]float64, error) {
	nt.run++
	if len(nt.noticeSamples) == 0 {
		return nil, fmt.Errorf("no delivered records to send")
	}
	send := func(c *counter, i int, kind string, body []byte) (time.Duration, error) {
		id := protocol.DeliveryID(fmt.Sprintf("base-%s-%d-%d", kind, nt.run, i), c.member)
		t0 := time.Now()
		if err := nt.keep(body); err != nil {
			return 0, err
		}
		if err := deliver(nt.client, c.url, id, body); err != nil {
			return 0, err
		}
		at, err := c.wait(ctx, time.Minute, id)
		return at.Sub(t0), err
	}
	var notices, denials []time.Duration
	for i := range nt.events {
		d, err := send(nt.ca, i, "notice", nt.noticeSamples[i%len(nt.noticeSamples)])
		if err != nil {
			return nil, err
		}
		notices = append(notices, d)
		if d, err = send(nt.cb, i, "denial", nt.denialSamples[i%len(nt.denialSamples)]); err != nil {
			return nil, err
		}
		denials = append(denials, d)
	}
	return map[string]float64{
		"notice-p50": percentile(notices, 50), "notice-p99": percentile(notices, 99),
		"denial-p50": percentile(denials, 50), "denial-p99": percentile(denials, 99),
	}, nil
}

// keep commits body to the raw bbolt file: one fsync.
func (nt *notices) keep(body []byte) error {
	return nt.raw.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("events"))
		if err != nil {
			return err
		}
		nt.seq++
		return b.Put(binary.BigEndian.AppendUint64(nil, nt.seq), body)
	})
}
