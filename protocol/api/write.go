package api

import (
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// A FlagStatus is where a flag is in its life.
type FlagStatus string

// The flag statuses. Thawing is a window on an active flag, not a status.
const (
	FlagActive  FlagStatus = "active"
	FlagLifted  FlagStatus = "lifted"
	FlagExpired FlagStatus = "expired"
	// FlagErased: an operator erased the subject's data (GDPR Art. 17).
	FlagErased FlagStatus = "erased"
)

// A Flag is a protection flag as the hub shows it. The member that placed
// it sees all of it; another sees what a check would show it, without the
// subject, the consent reference or the police report. A flag that has
// ended keeps none of those.
type Flag struct {
	ID string `json:"flag_id"`
	// Subject is the protected token; left out once the flag has ended and
	// for members other than its origin.
	Subject protocol.Token    `json:"subject,omitzero"`
	Kind    protocol.FlagKind `json:"kind"`
	// Origin is the member that placed it.
	Origin string `json:"origin"`
	// Status is the flag's status at the time of the answer: an active
	// flag past its expiry is shown expired.
	Status FlagStatus `json:"status"`
	// Thawed says protection is suspended right now.
	Thawed    bool      `json:"thawed"`
	PlacedAt  time.Time `json:"placed_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// ThawFrom and ThawUntil are the current or coming thaw window, if any.
	ThawFrom     time.Time              `json:"thaw_from,omitzero"`
	ThawUntil    time.Time              `json:"thaw_until,omitzero"`
	ConsentRef   string                 `json:"consent_ref,omitempty"`
	PoliceReport *protocol.PoliceReport `json:"police_report,omitempty"`
}

// A FlagResponse is the answer of GET /v1/flags/{id}: the flag and the
// signed records of it the member is entitled to, oldest first.
type FlagResponse struct {
	Flag    *Flag    `json:"flag"`
	Records []string `json:"records"`
}

// A SuspicionStatus is where a suspicion is in its life.
type SuspicionStatus string

// The suspicion statuses.
const (
	SuspicionActive    SuspicionStatus = "active"
	SuspicionRetracted SuspicionStatus = "retracted"
	SuspicionExpired   SuspicionStatus = "expired"
	SuspicionErased    SuspicionStatus = "erased"
)

// A Suspicion is a shared fraud suspicion, as the hub shows it to the
// member that reported it or asked for its details.
type Suspicion struct {
	ID string `json:"suspicion_id"`
	// Subjects are the tokens of the person suspected; left out once the
	// suspicion has ended.
	Subjects     []protocol.Token           `json:"subjects,omitempty"`
	Category     protocol.SuspicionCategory `json:"category"`
	Origin       string                     `json:"origin"`
	Status       SuspicionStatus            `json:"status"`
	ReportedAt   time.Time                  `json:"reported_at"`
	ExpiresAt    time.Time                  `json:"expires_at"`
	PoliceReport *protocol.PoliceReport     `json:"police_report,omitempty"`
}

// A WriteResponse is the hub's answer to a signed submission (a flag's
// placement, extension, thaw or lift; a suspicion's report or
// retraction). A repeat of the same signed bytes gets the same answer.
type WriteResponse struct {
	// Flag is the flag after a flag write; for a placement answered with
	// Existing, the flag that already protects the subject.
	Flag *Flag `json:"flag,omitempty"`
	// Suspicion is the suspicion after a suspicion write.
	Suspicion *Suspicion `json:"suspicion,omitempty"`
	// Payee is the payee record after a payee report or contest.
	Payee *Payee `json:"payee,omitempty"`
	// Recall is the recall after a recall write.
	Recall *Recall `json:"recall,omitempty"`
	// Record is the compact JWS of the record the submission produced;
	// left out when Existing, or when a repeated submission's record has
	// since been erased.
	Record string `json:"record,omitempty"`
	// Existing says an active flag already protected the subject: nothing
	// was placed, and Flag is that flag.
	Existing bool `json:"existing,omitempty"`
	// Seq is the record's sequence number in the event feed.
	Seq      uint64 `json:"seq,omitempty"`
	LogIndex uint64 `json:"log_index"`
}
