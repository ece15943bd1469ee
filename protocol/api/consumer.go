package api

import (
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// A HistoryResponse answers POST /v1/subjects/history: a consumer's
// history under one token, for the member acting for them. Accesses are
// the checks and other accesses the hub still holds the details of,
// oldest first (a lift, an expiry or an erasure deletes them, and so does
// the end of the log's details retention); FlagRecords the active flag's
// signed records. Suspicions are shown unless the deployment's legal basis
// withholds them from the subject (SuspicionsWithheld).
type HistoryResponse struct {
	Subject            protocol.Token            `json:"subject"`
	Flag               *protocol.FlagEntry       `json:"flag,omitempty"`
	FlagRecords        []string                  `json:"flag_records"`
	Accesses           []protocol.AccessEntry    `json:"accesses"`
	Suspicions         []protocol.SuspicionEntry `json:"suspicions"`
	SuspicionsWithheld bool                      `json:"suspicions_withheld,omitempty"`
	Disputes           []protocol.DisputeEntry   `json:"disputes"`
	LogIndex           uint64                    `json:"log_index"`
}

// An AccessReportResponse answers POST /v1/subjects/report: the hub's
// signed access report (a record of event access-report, compact JWS).
type AccessReportResponse struct {
	Report   string `json:"report"`
	LogIndex uint64 `json:"log_index"`
}

// A DisputeResponse answers a dispute's opening or answer, and GET
// /v1/disputes/{id}: the dispute as its two members see it, and the
// record the write made (none for a read).
type DisputeResponse struct {
	Dispute  protocol.DisputeEntry `json:"dispute"`
	Record   string                `json:"record,omitempty"`
	Seq      uint64                `json:"seq,omitempty"`
	LogIndex uint64                `json:"log_index,omitempty"`
}

// An AttestResponse answers POST /v1/erasure-attestations.
type AttestResponse struct {
	Count    int    `json:"count"`
	LogIndex uint64 `json:"log_index"`
}

// An AttestationStatus answers GET /v1/erasure-attestations/{jti}: of the
// Expected members (active members entitled to the erasure record), how
// many attested that they deleted what it named ("deleted at 11 of 12
// banks"). Members names them, to the operator and regulators only;
// Self says whether the caller attested.
type AttestationStatus struct {
	Record   string             `json:"record"`
	Type     protocol.EventType `json:"type"`
	IssuedAt time.Time          `json:"issued_at"`
	Expected int                `json:"expected"`
	Attested int                `json:"attested"`
	Self     bool               `json:"self"`
	Members  []Attestation      `json:"members,omitempty"`
}

// An Attestation is one expected member's attestation of an erasure
// record; At is zero while it has not attested.
type Attestation struct {
	Member string    `json:"member"`
	At     time.Time `json:"at,omitzero"`
}

// OverdueAttestations answer GET /v1/audit/erasure-attestations: the
// erasure records issued before Before (the attestation deadline ago) that
// some expected members have not attested, with those members.
type OverdueAttestations struct {
	Deadline string           `json:"deadline"`
	Before   time.Time        `json:"before"`
	Records  []OverdueErasure `json:"records"`
}

// An OverdueErasure is one erasure record with members not attested.
type OverdueErasure struct {
	Record   string             `json:"record"`
	Type     protocol.EventType `json:"type"`
	IssuedAt time.Time          `json:"issued_at"`
	Missing  []string           `json:"missing"`
}
