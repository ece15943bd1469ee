package replica

import (
	"context"
	"errors"
	"net/http"

	bolt "go.etcd.io/bbolt"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
)

// attest attests to the hub the erasures the replica made (a flag lifted
// or expired, a subject erased, a suspicion retracted or expired), in
// batches, and forgets each batch the hub took. A batch the hub refuses
// for what it holds (a problem other than a rate limit or an outage) is
// logged and forgotten: sending it again would not change the answer. On
// any other failure the batch stays in the file for the next sync.
func (r *Replica) attest(ctx context.Context) {
	for {
		ids, err := r.pendingAttestations(protocol.MaxAttestations)
		if err != nil {
			r.log.Warn("reading the erasures to attest failed", "error", err)
			return
		}
		if len(ids) == 0 {
			return
		}
		_, err = r.cfg.Client.AttestErasure(ctx, ids...)
		var p *client.Problem
		switch {
		case err == nil:
		case errors.As(err, &p) && p.Status >= 400 && p.Status < 500 && p.Status != http.StatusTooManyRequests:
			r.log.Warn("the hub refused an attestation of erasures; not sent again", "records", len(ids), "error", err)
		default:
			if ctx.Err() == nil {
				r.log.Warn("attesting erasures failed; trying again at the next sync", "records", len(ids), "error", err)
			}
			return
		}
		if err := r.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bAttest)
			for _, id := range ids {
				if err := b.Delete([]byte(id)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			r.log.Warn("forgetting attested erasures failed", "error", err)
			return
		}
	}
}

// pendingAttestations returns up to n erasure records not yet attested.
func (r *Replica) pendingAttestations(n int) ([]string, error) {
	var out []string
	err := r.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bAttest).Cursor()
		for k, _ := c.First(); k != nil && len(out) < n; k, _ = c.Next() {
			out = append(out, string(k))
		}
		return nil
	})
	return out, err
}

// PendingAttestations reports how many erasures the replica made that it
// has not yet attested to the hub.
func (r *Replica) PendingAttestations() (int, error) {
	n := 0
	err := r.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bAttest).Stats().KeyN
		return nil
	})
	return n, err
}
