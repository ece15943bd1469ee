package server

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

// putMember applies a member change and answers with the member; a nil
// command changes nothing, and the answer is the member as it was.
func (h *Hub) putMember(c *gin.Context, cmd *state.PutMember, err error, status int, was *api.Member) {
	if err != nil {
		h.refuse(c, "member change", err)
		return
	}
	if cmd == nil {
		c.JSON(http.StatusOK, api.MemberResponse{Member: was})
		return
	}
	res, err := h.store.Apply(cmd)
	switch {
	case err != nil:
		h.internal(c, "apply "+string(cmd.Entry.Action), err)
		return
	case res.Conflict:
		h.fail(c, decide.MemberConflict(cmd))
		return
	}
	h.members.Forget(cmd.Member.ID)
	h.bearers.forget(cmd.Member.ID)
	if cmd.Create {
		c.Header("Location", "/v1/admin/members/"+cmd.Member.ID)
	}
	c.JSON(status, api.MemberResponse{Member: cmd.Member, LogIndex: res.LogIndex})
}

// addMember: POST /v1/admin/members.
func (h *Hub) addMember(c *gin.Context) {
	var req api.MemberRequest
	if !h.readJSON(c, &req) {
		return
	}
	cmd, err := h.decide.AddMember(member(c), req, h.now())
	h.putMember(c, cmd, err, http.StatusCreated, nil)
}

// loadMember reads the member named in the URL, or nil if there is none.
func (h *Hub) loadMember(c *gin.Context) (*api.Member, bool) {
	m, err := h.store.Member(c, c.Param("id"))
	if errors.Is(err, store.ErrNotFound) {
		return nil, true
	}
	if err != nil {
		h.internal(c, "read member", err)
		return nil, false
	}
	return m, true
}

// updateMember: PATCH /v1/admin/members/{id}.
func (h *Hub) updateMember(c *gin.Context) {
	var patch api.MemberPatch
	if !h.readJSON(c, &patch) {
		return
	}
	if m, ok := h.loadMember(c); ok {
		cmd, err := h.decide.UpdateMember(member(c), c.Param("id"), m, patch, h.now())
		h.putMember(c, cmd, err, http.StatusOK, m)
	}
}

// setStatus suspends or resumes the member in the URL.
func (h *Hub) setStatus(c *gin.Context, status api.MemberStatus) {
	if m, ok := h.loadMember(c); ok {
		cmd, err := h.decide.SetMemberStatus(member(c), c.Param("id"), m, status, h.now())
		h.putMember(c, cmd, err, http.StatusOK, m)
	}
}

// suspendMember: POST /v1/admin/members/{id}/suspend. A suspended member's
// requests are refused with 403; its records stay.
func (h *Hub) suspendMember(c *gin.Context) { h.setStatus(c, api.MemberSuspended) }

// resumeMember: POST /v1/admin/members/{id}/resume.
func (h *Hub) resumeMember(c *gin.Context) { h.setStatus(c, api.MemberActive) }

// listMembers: GET /v1/admin/members.
func (h *Hub) listMembers(c *gin.Context) {
	ms, err := h.store.Members()
	if err != nil {
		h.internal(c, "list members", err)
		return
	}
	if ms == nil {
		ms = []*api.Member{}
	}
	c.JSON(http.StatusOK, api.MembersResponse{Members: ms})
}

// getMember: GET /v1/admin/members/{id}.
func (h *Hub) getMember(c *gin.Context) {
	m, ok := h.loadMember(c)
	switch {
	case !ok:
	case m == nil:
		h.fail(c, problemf(protocol.ProblemNotFound, "no member %s", decide.Quote(c.Param("id"))))
	default:
		c.JSON(http.StatusOK, api.MemberResponse{Member: m})
	}
}

// backup: GET /v1/admin/backup, a consistent copy of the data file while
// the hub runs. Start a hub on the copy to restore it.
func (h *Hub) backup(c *gin.Context) {
	now := h.now()
	if _, err := h.store.Apply(h.decide.Backup(member(c), now)); err != nil {
		h.internal(c, "log backup", err)
		return
	}
	c.Header("Content-Type", "application/octet-stream")
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="sparr-%s.db"`, now.UTC().Format("20060102T150405Z")))
	c.Status(http.StatusOK)
	if _, err := h.store.Backup(c.Writer); err != nil {
		h.log.Error("backup failed midway", "request_id", c.GetString(keyRequestID), "error", err)
		panic(http.ErrAbortHandler) // cut the response so the client sees a broken copy, not a short one
	}
}
