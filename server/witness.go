package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

// Defaults of witnessing, used by [New] for zero fields of [Config].
const (
	DefaultWitnessRetry    = 5 * time.Second  // the first wait after a witness failed
	DefaultWitnessRetryMax = 10 * time.Minute // the longest wait between attempts
	DefaultWitnessTimeout  = 10 * time.Second // one add-checkpoint request
)

// A Witness is a witness the hub asks to cosign every new checkpoint
// (c2sp.org/tlog-witness): its name, the URL prefix of its API (the hub
// posts to URL + "/add-checkpoint"), and its public key, a note verifier
// key "<name>+<hash>+<key>". Name defaults to the key's name.
type Witness struct {
	Name string
	URL  string
	Key  string
}

// A witnessLink is the hub's exchange with one witness, run by its own
// goroutine ([Hub.runWitness]) so that a slow or failing witness delays
// neither the others nor any write.
type witnessLink struct {
	cfg      Witness
	id       string // the key's "<name>+<hash>", the store's name for it
	verifier note.Verifier
	wake     chan struct{}

	mu       sync.Mutex
	known    uint64 // the tree size the witness holds, as far as the hub knows
	cosigned *uint64
	at       *time.Time
	failures int
	lastErr  string
	next     time.Time
}

// newWitnessLinks checks the configured witnesses.
func newWitnessLinks(ws []Witness) ([]*witnessLink, error) {
	if len(ws) > protocol.MaxWitnesses {
		return nil, fmt.Errorf("server: %d witnesses, at most %d", len(ws), protocol.MaxWitnesses)
	}
	var links []*witnessLink
	seen := map[string]bool{}
	for _, w := range ws {
		v, err := protocol.NewWitnessVerifier(w.Key)
		if err != nil {
			return nil, fmt.Errorf("server: witness %s: %w", w.URL, err)
		}
		if w.Name == "" {
			w.Name = v.Name()
		}
		if !strings.HasPrefix(w.URL, "https://") && !strings.HasPrefix(w.URL, "http://") {
			return nil, fmt.Errorf("server: witness %s: URL %q is not an http(s) URL", w.Name, w.URL)
		}
		w.URL = strings.TrimSuffix(w.URL, "/")
		id := fmt.Sprintf("%s+%08x", v.Name(), v.KeyHash())
		if seen[id] || seen[w.Name] {
			return nil, fmt.Errorf("server: witness %s is configured twice", w.Name)
		}
		seen[id], seen[w.Name] = true, true
		links = append(links, &witnessLink{cfg: w, id: id, verifier: v, wake: make(chan struct{}, 1)})
	}
	return links, nil
}

// notifyWitnesses wakes every witness link: a checkpoint was stored. It
// never blocks.
func (h *Hub) notifyWitnesses() {
	for _, l := range h.witnesses {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}

// runWitness sends the latest checkpoint to one witness whenever a new one
// is stored, and after a failure again with a growing wait (doubling from
// Config.WitnessRetry up to Config.WitnessRetryMax, with jitter), until
// Close.
func (h *Hub) runWitness(l *witnessLink, stop <-chan struct{}) {
	timer := time.NewTimer(0)
	<-timer.C
	for {
		select {
		case <-stop:
			timer.Stop()
			return
		case <-l.wake:
			l.mu.Lock()
			waiting := l.failures > 0 && time.Now().Before(l.next)
			l.mu.Unlock()
			if waiting {
				continue // the timer is set for the retry
			}
		case <-timer.C:
		}
		err := h.witnessOnce(l)
		l.mu.Lock()
		if err == nil {
			l.failures, l.lastErr, l.next = 0, "", time.Time{}
		} else {
			l.failures++
			wait := h.cfg.WitnessRetry << min(l.failures-1, 30)
			if wait <= 0 || wait > h.cfg.WitnessRetryMax {
				wait = h.cfg.WitnessRetryMax
			}
			wait = time.Duration(float64(wait) * (0.9 + 0.2*rand.Float64()))
			l.lastErr, l.next = err.Error(), time.Now().Add(wait)
			timer.Reset(wait)
			h.log.Warn("a witness did not cosign the checkpoint; the hub tries again",
				"witness", l.cfg.Name, "failures", l.failures, "retry_in", wait.Round(time.Millisecond).String(), "error", err)
		}
		l.mu.Unlock()
	}
}

// witnessOutcomes are the outcomes of add-checkpoint requests, the
// values of sparr_witness_requests_total's outcome label.
var witnessOutcomes = []string{"cosigned", "conflict", "refused", "failed"}

// errWitnessRefused marks a witness's refusal (an answer in 4xx), as
// against a failure to reach it.
var errWitnessRefused = errors.New("refused")

// witnessOnce brings one witness up to the latest checkpoint: it posts
// the checkpoint with a consistency proof from the size the witness holds,
// learns that size from a 409 answer and posts again, and keeps the
// cosignature it gets.
func (h *Hub) witnessOnce(l *witnessLink) error {
	msg, size, err := h.store.Checkpoint()
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read checkpoint: %w", err)
	}
	l.mu.Lock()
	done := l.cosigned != nil && *l.cosigned >= size
	old := l.known
	l.mu.Unlock()
	if done {
		return nil
	}
	for range 3 {
		if old > size {
			err := fmt.Errorf("%w: the witness holds a tree of %d entries, more than the latest checkpoint's %d: it has seen a checkpoint this hub no longer has (restored from an older backup?)", errWitnessRefused, old, size)
			h.metrics.witnesses.WithLabelValues(l.cfg.Name, "refused").Inc()
			return err
		}
		cosig, known, err := h.addCheckpoint(l, msg, old, size)
		switch {
		case err != nil:
			outcome := "failed"
			if errors.Is(err, errWitnessRefused) {
				outcome = "refused"
			}
			h.metrics.witnesses.WithLabelValues(l.cfg.Name, outcome).Inc()
			return err
		case cosig == "":
			h.metrics.witnesses.WithLabelValues(l.cfg.Name, "conflict").Inc()
			old = known
			l.mu.Lock()
			l.known = known
			l.mu.Unlock()
			continue
		}
		res, err := h.store.Apply(&state.AddCosignature{Size: size, Witness: l.id, Line: cosig})
		if err != nil {
			return fmt.Errorf("keep the cosignature: %w", err)
		}
		_ = res // a conflict means one of this witness is kept already
		h.metrics.witnesses.WithLabelValues(l.cfg.Name, "cosigned").Inc()
		now := h.now()
		l.mu.Lock()
		l.known, l.cosigned, l.at = size, &size, &now
		l.mu.Unlock()
		return nil
	}
	return errors.New("the witness kept answering with another tree size")
}

// addCheckpoint posts one add-checkpoint request (c2sp.org/tlog-witness)
// and returns the witness's valid cosignature line, or, for a 409
// answer, the tree size the witness holds.
func (h *Hub) addCheckpoint(l *witnessLink, msg []byte, old, size uint64) (string, uint64, error) {
	var body bytes.Buffer
	fmt.Fprintf(&body, "old %d\n", old)
	if old > 0 && old < size {
		proof, err := h.store.ConsistencyProof(old, size)
		if err != nil {
			return "", 0, fmt.Errorf("prove consistency %d → %d: %w", old, size, err)
		}
		for _, p := range proof {
			body.WriteString(base64.StdEncoding.EncodeToString(p[:]) + "\n")
		}
	}
	body.WriteString("\n")
	body.Write(msg)
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.WitnessTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.cfg.URL+"/add-checkpoint", &body)
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	resp, err := h.witnessClient.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("post add-checkpoint: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, protocol.MaxCheckpointSize))
	if err != nil {
		return "", 0, fmt.Errorf("read the answer: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		lines, err := protocol.CosignatureLines(msg, answer, l.verifier)
		if err != nil {
			return "", 0, fmt.Errorf("%w: %v", errWitnessRefused, err)
		}
		return lines[0], 0, nil
	case resp.StatusCode == http.StatusConflict:
		known, err := strconv.ParseUint(strings.TrimSuffix(string(answer), "\n"), 10, 64)
		if err != nil {
			return "", 0, fmt.Errorf("%w: 409 with a body that is not a tree size: %q", errWitnessRefused, firstLine(answer))
		}
		return "", known, nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return "", 0, fmt.Errorf("%w: %s: %q", errWitnessRefused, resp.Status, firstLine(answer))
	default:
		return "", 0, fmt.Errorf("witness answered %s: %q", resp.Status, firstLine(answer))
	}
}

// firstLine is the start of a witness's answer, for messages.
func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// WitnessesStatus returns how the exchange with each witness stands.
func (h *Hub) WitnessesStatus() api.WitnessesStatus {
	out := api.WitnessesStatus{Witnesses: []api.WitnessStatus{}}
	out.CheckpointSize = h.latestCheckpoint().Entries
	for _, l := range h.witnesses {
		l.mu.Lock()
		s := api.WitnessStatus{Witness: api.Witness{Name: l.cfg.Name, URL: l.cfg.URL, PublicKey: l.cfg.Key},
			CosignedSize: l.cosigned, CosignedAt: l.at, Failures: l.failures, LastError: l.lastErr}
		if l.failures > 0 {
			next := l.next.UTC()
			s.NextAttempt = &next
		}
		l.mu.Unlock()
		out.Witnesses = append(out.Witnesses, s)
	}
	return out
}

// witnessesStatus: GET /v1/log/witnesses.
func (h *Hub) witnessesStatus(c *gin.Context) {
	c.Header("Cache-Control", "no-cache")
	c.JSON(http.StatusOK, h.WitnessesStatus())
}

// witnessInfo lists the configured witnesses for the discovery document.
func (h *Hub) witnessInfo() []api.Witness {
	out := []api.Witness{}
	for _, l := range h.witnesses {
		out = append(out, api.Witness{Name: l.cfg.Name, URL: l.cfg.URL, PublicKey: l.cfg.Key})
	}
	return out
}

// witnessCollector reports, at each scrape, each witness's latest
// cosigned checkpoint and its failures since the last success.
type witnessCollector struct{ hub *Hub }

var (
	witnessCosignedDesc = prometheus.NewDesc("sparr_witness_cosigned_entries", "Exchange-log entries the latest checkpoint a witness cosigned covers, by witness; absent until it first cosigns.", []string{"witness"}, nil)
	witnessFailuresDesc = prometheus.NewDesc("sparr_witness_failures", "Attempts to have a witness cosign that failed since its last success, by witness.", []string{"witness"}, nil)
)

func (w *witnessCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- witnessCosignedDesc
	ch <- witnessFailuresDesc
}

func (w *witnessCollector) Collect(ch chan<- prometheus.Metric) {
	for _, l := range w.hub.witnesses {
		l.mu.Lock()
		cosigned, failures := l.cosigned, l.failures
		l.mu.Unlock()
		if cosigned != nil {
			ch <- prometheus.MustNewConstMetric(witnessCosignedDesc, prometheus.GaugeValue, float64(*cosigned), l.cfg.Name)
		}
		ch <- prometheus.MustNewConstMetric(witnessFailuresDesc, prometheus.GaugeValue, float64(failures), l.cfg.Name)
	}
}
