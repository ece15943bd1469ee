package bench

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/sparr-dev/sparr/consent"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server/store"
)

// bulkFlags writes n active flags straight into the hub's store, as the
// commands a placement applies — a signed flag-placed record, the flag, the
// consumer's consent, the submission's idempotency row and the log entry
// with its details — but without the HTTP round trip and the member's
// signature check, so that a data set of a million flags loads in a few
// minutes. The tokens are random values in the token format: what a token
// is, to the store. TestBulkLoadLooksLikePlacements keeps this loader
// writing what a real placement writes. It returns the bytes of the signed
// records it wrote.
func bulkFlags(ctx context.Context, cfg *Config, h *hub, origin string, n int) (recordBytes int64, err error) {
	progress := cmp.Or[io.Writer](cfg.Progress, io.Discard)
	key := h.keys.Active()
	epoch := h.keys.Token.Epoch()
	workers := runtime.NumCPU() * 512 // enough in flight to fill each group commit (up to 512 commands)
	var done, bytes atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start, last := time.Now(), time.Now()
	var mu sync.Mutex
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n && ctx.Err() == nil && firstErr.Load() == nil; i += workers {
				cmd, err := placement(key, h.url, origin, epoch, time.Now())
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

// placement builds the command a standard flag placement by origin applies.
func placement(key *protocol.SigningKey, issuer, origin string, epoch uint32, now time.Time) (*store.Command, error) {
	now = now.UTC().Truncate(time.Second)
	tok := randomToken(epoch)
	id, jti, consentID := uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()
	expiry := now.Add(365 * 24 * time.Hour)
	rec := &protocol.Record{Issuer: issuer, IssuedAt: now, ID: uuid.Must(uuid.NewV7()).String(), Txn: jti, Subject: protocol.OpaqueSubject(tok),
		Event: protocol.FlagPlaced{FlagID: id, Kind: protocol.FlagKindStandard, Origin: origin, ExpiresAt: protocol.NewNumericDate(expiry), ConsentRef: consentID}}
	jws, err := protocol.SignRecord(rec, key)
	if err != nil {
		return nil, err
	}
	c := protocol.Consent{
		ID: consentID, Subject: tok, Controller: origin, Purpose: "identity-fraud-protection", LegalBasis: "gdpr-art-6-1-a",
		Collection: protocol.ConsentCollection{Method: "mobile-app", At: protocol.NewNumericDate(now.Add(-time.Minute))},
		Notice:     "https://" + origin + ".example/privacy", ExpiresAt: protocol.NewNumericDate(now.AddDate(2, 0, 0)),
		Evidence: protocol.ConsentEvidence{AuthenticationMethod: "bankid", Reference: "bench-" + jti},
	}
	kept, err := json.Marshal(consent.NewRecord(c, id, now))
	if err != nil {
		return nil, err
	}
	salt := make([]byte, 32)
	rand.Read(salt)
	details, _ := json.Marshal(map[string]string{"flag_id": id, "record": rec.ID, "subject": tok.String()})
	hash := sha256.Sum256(jws)
	return &store.Command{
		At: now, Actor: origin, Action: protocol.LogFlagPlaced, Salt: salt, Details: details, Subjects: []string{tok.String()},
		Submission: &store.SubmissionRef{ID: jti, Hash: hash[:]},
		Record:     &store.Record{ID: rec.ID, Type: protocol.EventFlagPlaced, Subjects: []string{tok.String()}, Ref: id, IssuedAt: now, JWS: string(jws)},
		Flag: &store.Flag{ID: id, Version: 1, Subject: tok.String(), Kind: protocol.FlagKindStandard, Origin: origin,
			Status: store.FlagActive, PlacedAt: now, ExpiresAt: expiry, RemindAt: expiry.Add(-30 * 24 * time.Hour), ConsentID: consentID,
			Records: []string{rec.ID}},
		Consent: &store.ConsentPut{ID: id, Value: kept},
	}, nil
}

// randomToken returns a random value in the token format: to the hub, a
// token is what a member's oblivious evaluation would have made, and the
// scenarios that need many fresh ones need them faster than that.
func randomToken(epoch uint32) protocol.Token {
	tok := protocol.Token{Type: protocol.TypeEmail, Epoch: epoch}
	rand.Read(tok.Value[:])
	return tok
}
