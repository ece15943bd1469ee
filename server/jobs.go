package server

import (
	"time"
)

// jobBatch is how many flags or suspicions one pass of a job handles
// before it looks again.
const jobBatch = 100

func (h *Hub) runJobs(stop <-chan struct{}) {
	t := time.NewTicker(h.cfg.JobInterval)
	defer t.Stop()
	for {
		if err := h.RunJobs(); err != nil {
			h.log.Error("background job failed", "error", err)
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// RunJobs does now what the background jobs do on their schedule: it drops
// events older than the feed's retention window, ends flags, suspicions
// and payee records whose time is up, with a signed record each, deletes
// closed recalls past their retention, reminds origin
// members of flags about to expire, erases log details at the end of their
// retention, publishes the tombstones of the erasures of past periods, and
// forgets the outcomes of submissions too old to be repeated.
func (h *Hub) RunJobs() error {
	for _, job := range []func(time.Time) (int, error){h.pruneFeed, h.expireFlags, h.remindFlags, h.expireSuspicions,
		h.lapseDisputes, h.expirePayees, h.expireRecalls, h.expireDetails, h.publishErasures, h.pruneReplays} {
		for {
			n, err := job(h.now())
			if err != nil {
				return err
			}
			if n < jobBatch {
				break
			}
		}
	}
	return nil
}

// expireFlags ends flags past their expiry (see [decide.Decider.ExpireFlag]).
func (h *Hub) expireFlags(now time.Time) (int, error) {
	due, err := h.store.FlagsExpiringBefore(now, jobBatch)
	if err != nil {
		return 0, err
	}
	for _, f := range due {
		cmd, err := h.decide.ExpireFlag(f, now)
		if err != nil {
			return 0, err
		}
		if _, err := h.commit(cmd); err != nil {
			return 0, err
		}
	}
	return len(due), nil
}

// remindFlags sends the origin member of each flag nearing its expiry a
// reminder record, delivered to that member only.
func (h *Hub) remindFlags(now time.Time) (int, error) {
	due, err := h.store.FlagsToRemindBefore(now, jobBatch)
	if err != nil {
		return 0, err
	}
	for _, f := range due {
		cmd, err := h.decide.RemindFlag(f, now)
		if err != nil {
			return 0, err
		}
		if _, err := h.commit(cmd); err != nil {
			return 0, err
		}
	}
	return len(due), nil
}

// pruneFeed drops events older than the feed's retention window. Like
// every change of the hub's state it is a command, carrying its cutoff, and
// it is logged (feed-pruned) when it drops anything. Records still queued
// for a member's endpoint stay until delivered.
func (h *Hub) pruneFeed(now time.Time) (int, error) {
	res, err := h.commit(h.decide.PruneFeed(now, 10*jobBatch))
	if err != nil {
		return 0, err
	}
	return res.Pruned, nil
}

// expireSuspicions ends suspicions past their retention and deletes their
// records; the expiry record, addressed to the reporter alone, tells it
// to delete what it holds of the suspicion.
func (h *Hub) expireSuspicions(now time.Time) (int, error) {
	due, err := h.store.SuspicionsExpiringBefore(now, jobBatch)
	if err != nil {
		return 0, err
	}
	for _, s := range due {
		cmd, err := h.decide.ExpireSuspicion(s, now)
		if err != nil {
			return 0, err
		}
		if _, err := h.commit(cmd); err != nil {
			return 0, err
		}
	}
	return len(due), nil
}

// expirePayees deletes payee records past their retention; the expiry
// record tells every member to delete its copy.
func (h *Hub) expirePayees(now time.Time) (int, error) {
	due, err := h.store.PayeesExpiringBefore(now, jobBatch)
	if err != nil {
		return 0, err
	}
	for _, p := range due {
		cmd, err := h.decide.ExpirePayee(p, now)
		if err != nil {
			return 0, err
		}
		if _, err := h.commit(cmd); err != nil {
			return 0, err
		}
	}
	return len(due), nil
}

// expireRecalls deletes closed recalls past their retention.
func (h *Hub) expireRecalls(now time.Time) (int, error) {
	due, err := h.store.RecallsClosedBefore(now.Add(-h.decide.Policy.PayeeRetention), jobBatch)
	if err != nil {
		return 0, err
	}
	for _, rc := range due {
		if _, err := h.commit(h.decide.ExpireRecall(rc, now)); err != nil {
			return 0, err
		}
	}
	return len(due), nil
}

// expireDetails erases the details of log entries at the end of their
// retention; their tombstones go out with the next batch.
func (h *Hub) expireDetails(now time.Time) (int, error) {
	res, err := h.commit(h.decide.ExpireDetails(now, 10*jobBatch))
	if err != nil {
		return 0, err
	}
	return res.Erased, nil
}

// publishErasures appends the tombstones of every erasure of the erasure
// periods that have ended, in one batch.
func (h *Hub) publishErasures(now time.Time) (int, error) {
	_, err := h.commit(h.decide.PublishErasures(now))
	return 0, err
}

// pruneReplays forgets the outcomes of submissions too old to be sent
// again.
func (h *Hub) pruneReplays(now time.Time) (int, error) {
	_, err := h.commit(h.decide.PruneReplays(now, 10*jobBatch))
	return 0, err
}
