package server

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sparr-dev/sparr/federation/peering"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

// placeFlag: POST /v1/flags.
func (h *Hub) placeFlag(c *gin.Context) {
	s, hash, ok := h.readSubmission(c, protocol.ActionPlaceFlag)
	if !ok || h.replayed(c, s, hash) {
		return
	}
	if p, prob := h.writeHome(s); prob != nil || p != nil {
		if prob != nil {
			h.fail(c, prob)
			return
		}
		h.relayWrite(c, s, hash, []*peering.Peer{p})
		return
	}
	m, subject := member(c), s.Request.(protocol.PlaceFlag).Subject.String()
	cmd, res, ok := apply(h, c, "place flag", func(now time.Time) (*state.PlaceFlag, error) {
		on, err := h.store.FlagByToken(subject)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		return h.decide.PlaceFlag(m, s, hash, on, now)
	})
	if !ok {
		return
	}
	now := h.now()
	if res.Existing != nil {
		c.JSON(http.StatusOK, api.WriteResponse{Flag: decide.FlagView(m, res.Existing, now), Existing: true, LogIndex: res.LogIndex})
		return
	}
	c.Header("Location", "/v1/flags/"+cmd.Flag.ID)
	c.JSON(http.StatusCreated, api.WriteResponse{Flag: decide.FlagView(m, cmd.Flag, now), Record: cmd.Record.JWS, Seq: res.Seq, LogIndex: res.LogIndex})
}

// readFlag reads the flag in the URL, or nil if the hub holds none.
func (h *Hub) readFlag(c *gin.Context) (*state.Flag, error) {
	f, err := h.store.Flag(c.Param("id"))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return f, err
}

// changeFlag is the write path of extend, thaw and lift: read and check
// the submission, then decide with change against the flag as stored, and
// answer with the flag's new state.
func changeFlag[C state.Command](h *Hub, c *gin.Context, action protocol.Action, flagID func(protocol.Request) string,
	change func(s *protocol.Submission, hash []byte, f *state.Flag, now time.Time) (C, error), result func(C) (*state.Flag, *state.Record)) {
	s, hash, ok := h.readSubmission(c, action)
	if !ok || !h.checkPathID(c, "flag_id", flagID(s.Request)) || h.replayed(c, s, hash) {
		return
	}
	if peers := h.peers(); len(peers) > 0 && !relayedHere(c) {
		// A flag this hub does not hold may be a foreign identifier's,
		// held by its home hub.
		f, err := h.readFlag(c)
		if err != nil {
			h.internal(c, "read flag", err)
			return
		}
		if f == nil {
			h.relayWrite(c, s, hash, peers)
			return
		}
	}
	cmd, res, ok := apply(h, c, string(action), func(now time.Time) (C, error) {
		f, err := h.readFlag(c)
		if err != nil {
			var none C
			return none, err
		}
		return change(s, hash, f, now)
	})
	if !ok {
		return
	}
	f, rec := result(cmd)
	c.JSON(http.StatusOK, api.WriteResponse{Flag: decide.FlagView(member(c), f, h.now()), Record: rec.JWS, Seq: res.Seq, LogIndex: res.LogIndex})
}

func changed(c *state.ChangeFlag) (*state.Flag, *state.Record) { return c.Flag, c.Record }

// extendFlag: POST /v1/flags/{id}/extend.
func (h *Hub) extendFlag(c *gin.Context) {
	m := member(c)
	changeFlag(h, c, protocol.ActionExtendFlag, func(r protocol.Request) string { return r.(protocol.ExtendFlag).FlagID },
		func(s *protocol.Submission, hash []byte, f *state.Flag, now time.Time) (*state.ChangeFlag, error) {
			var cons []byte
			if f != nil {
				var err error
				if cons, err = h.store.Consent(f.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
					return nil, err
				}
			}
			return h.decide.ExtendFlag(m, s, hash, f, cons, now)
		}, changed)
}

// thawFlag: POST /v1/flags/{id}/thaw.
func (h *Hub) thawFlag(c *gin.Context) {
	m := member(c)
	changeFlag(h, c, protocol.ActionThawFlag, func(r protocol.Request) string { return r.(protocol.ThawFlag).FlagID },
		func(s *protocol.Submission, hash []byte, f *state.Flag, now time.Time) (*state.ChangeFlag, error) {
			return h.decide.ThawFlag(m, s, hash, f, now)
		}, changed)
}

// liftFlag: POST /v1/flags/{id}/lift. Lifting withdraws consent (see
// [decide.Decider.LiftFlag]).
func (h *Hub) liftFlag(c *gin.Context) {
	m := member(c)
	changeFlag(h, c, protocol.ActionLiftFlag, func(r protocol.Request) string { return r.(protocol.LiftFlag).FlagID },
		func(s *protocol.Submission, hash []byte, f *state.Flag, now time.Time) (*state.EndFlag, error) {
			return h.decide.LiftFlag(m, s, hash, f, now)
		}, func(c *state.EndFlag) (*state.Flag, *state.Record) { return c.Flag, c.Record })
}

// getFlag: GET /v1/flags/{id}. The member that placed the flag sees all
// of it; another sees what a check would show it: the flag's state and the
// signed records it is entitled to, but not the subject, the consent
// reference or the police report.
func (h *Hub) getFlag(c *gin.Context) {
	m := member(c)
	f, err := h.readFlag(c)
	if err != nil {
		h.internal(c, "read flag", err)
		return
	}
	if f == nil {
		h.fail(c, problemf(protocol.ProblemNotFound, "no flag %s", decide.Quote(c.Param("id"))))
		return
	}
	recs, err := h.store.Records(f.Records)
	if err != nil {
		h.internal(c, "read flag records", err)
		return
	}
	c.JSON(http.StatusOK, api.FlagResponse{Flag: decide.FlagView(m, f, h.now()), Records: decide.EntitledJWS(m, recs)})
}
