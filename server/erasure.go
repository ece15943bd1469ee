package server

import (
	"net/http"
	"regexp"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server/store"
)

// erasureRequest is the body of POST /v1/admin/erasures.
type erasureRequest struct {
	// Subject is the token of the person whose data is to be erased.
	Subject string `json:"subject"`
	// LegalBasis names why, for example "gdpr-art-17".
	LegalBasis string `json:"legal_basis"`
}

var basisPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,63}$`)

// erase: POST /v1/admin/erasures erases everything the hub holds about a
// subject (GDPR Art. 17): its flag and suspicions end, every record naming
// it and the details of every log entry mentioning it are deleted, each
// erased entry gets a tombstone stating the legal basis, and a
// subject-erased record tells every member to erase what it holds.
func (h *Hub) erase(c *gin.Context) {
	var req erasureRequest
	if !h.readJSON(c, &req) {
		return
	}
	tok, err := protocol.ParseToken(req.Subject)
	if err != nil {
		h.fail(c, tokenProblem("subject", err))
		return
	}
	if !basisPattern.MatchString(req.LegalBasis) {
		h.fail(c, fieldProblem(protocol.ProblemValidation, "legal_basis", "%q: name the legal basis in lower-case letters, digits, '.' and '-', such as gdpr-art-17", req.LegalBasis))
		return
	}
	m, now := member(c), h.now().UTC().Truncate(time.Second)
	cmd, res, ok := h.apply(c, func() (*store.Command, *protocol.Problem) {
		subjects, err := h.store.Subjects([]string{tok.String()})
		if err != nil {
			return nil, problemf(protocol.ProblemInternal, "reading the subject failed")
		}
		// About finds every entry whose details name the subject, those
		// written before the store indexed entries by subject too.
		records, entries, err := h.store.About(tok.String())
		if err != nil {
			return nil, problemf(protocol.ProblemInternal, "finding the subject's data failed")
		}
		rec, err := h.sign(newID(), []protocol.Token{tok}, "", "", protocol.SubjectErased{Origin: m.ID, LegalBasis: req.LegalBasis}, now)
		if err != nil {
			return nil, problemf(protocol.ProblemInternal, "signing failed")
		}
		cmd := &store.Command{
			At: h.now(), Actor: m.ID, Action: protocol.LogSubjectErased,
			Attrs:  []protocol.LogAttr{{Key: "basis", Value: req.LegalBasis}},
			Record: rec,
			Erase:  &store.Erase{Records: records, LogEntries: entries, Subjects: []string{tok.String()}, Basis: req.LegalBasis},
		}
		if f := subjects[0].Flag; f != nil {
			cmd.Flag = ended(f, rec, store.FlagErased, now)
			cmd.Flag.Records = nil
			cmd.Erase.Consent = f.ID
		}
		for _, sp := range subjects[0].Suspicions {
			e := endedSuspicion(sp, rec, store.SuspicionErased, now)
			e.Records = nil
			cmd.EndSuspicions = append(cmd.EndSuspicions, e)
		}
		return cmd, nil
	})
	if !ok {
		return
	}
	c.JSON(http.StatusOK, gin.H{
		"record": cmd.Record.JWS, "seq": res.Seq, "log_index": res.LogIndex,
		"records_erased": len(cmd.Erase.Records), "log_entries_erased": res.Erased,
	})
}
