package bench

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

// bulkFlags writes n active flags straight into the hub's store, as the
// commands the hub's decision layer makes for a placement — a signed
// flag-placed record, the flag, the consumer's consent, the submission's
// idempotency row and the log entry with its details — but without the
// HTTP round trip and the member's signature check, so that a data set of a million flags loads in a few
// minutes. The tokens are random values in the token format: what a token
// is, to the store. TestBulkLoadLooksLikePlacements keeps this loader
// writing what a real placement writes. It returns the bytes of the signed
// records it wrote.
func bulkFlags(ctx context.Context, cfg *Config, h *hub, origin string, n int) (recordBytes int64, err error) {
	progress := cmp.Or[io.Writer](cfg.Progress, io.Discard)
	key := h.keys.Active()
	policy := decide.DefaultPolicy()
	policy.Quotas = unlimitedQuotas
	d := &decide.Decider{Issuer: h.url, Policy: policy, TokenEpoch: h.keys.Token.Epoch(),
		Sign: func(r *protocol.Record) ([]byte, error) { return protocol.SignRecord(r, key) }}
	m := &api.Member{ID: origin}
	workers := runtime.NumCPU() * 512 // enough in flight to fill each group commit (up to 512 commands)
	var done, bytes atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start, last := time.Now(), time.Now()
	var mu sync.Mutex
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n && ctx.Err() == nil && firstErr.Load() == nil; i += workers {
				cmd, err := placement(d, m, time.Now())
				if err == nil {
					var res *store.Result
					if res, err = h.st.Apply(cmd); err == nil && (res.Existing != nil || res.Conflict) {
						err = fmt.Errorf("bulk placement %d was not applied", i)
					}
					bytes.Add(int64(len(cmd.Record.JWS)))
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				if d := done.Add(1); d%10_000 == 0 {
					mu.Lock()
					if time.Since(last) > 5*time.Second {
						last = time.Now()
						fmt.Fprintf(progress, "   %d of %d flags loaded (%.0f/s)\n", d, n, float64(d)/time.Since(start).Seconds())
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, err
	}
	return bytes.Load(), ctx.Err()
}

// placement decides, as the hub does, a standard flag placement by origin
// on a fresh random token.
func placement(d *decide.Decider, origin *api.Member, now time.Time) (*state.PlaceFlag, error) {
	tok := randomToken(d.TokenEpoch)
	jti := uuid.Must(uuid.NewV7()).String()
	c := &protocol.Consent{
		ID: uuid.Must(uuid.NewV7()).String(), Subject: tok, Controller: origin.ID, Purpose: "identity-fraud-protection", LegalBasis: "gdpr-art-6-1-a",
		Collection: protocol.ConsentCollection{Method: "mobile-app", At: protocol.NewNumericDate(now.Add(-time.Minute))},
		Notice:     "https://" + origin.ID + ".example/privacy", ExpiresAt: protocol.NewNumericDate(now.AddDate(2, 0, 0)),
		Evidence: protocol.ConsentEvidence{AuthenticationMethod: "bankid", Reference: "bench-" + jti},
	}
	s := &protocol.Submission{Issuer: origin.ID, Audience: d.Issuer, IssuedAt: now, ID: jti,
		Request: protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: c}}
	hash := sha256.Sum256([]byte(jti)) // what the store keeps of the signed bytes the loader skips
	cmd, err := d.PlaceFlag(origin, s, hash[:], nil, now)
	if err != nil {
		return nil, err
	}
	return cmd, d.Charge(origin, cmd, now) // as the hub charges the member's storage quota
}

// randomToken returns a random value in the token format: to the hub, a
// token is what a member's oblivious evaluation would have made, and the
// scenarios that need many fresh ones need them faster than that.
func randomToken(epoch uint32) protocol.Token {
	tok := protocol.Token{Type: protocol.TypeEmail, Epoch: epoch}
	rand.Read(tok.Value[:])
	return tok
}
