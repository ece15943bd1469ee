package api

import (
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// A Payee is a payee record as the hub shows it: the aggregate of every
// member's report of one payee, with its latest signed record.
type Payee struct {
	PayeeID     string                       `json:"payee_id"`
	Version     uint64                       `json:"version"`
	Customers   int                          `json:"customers"`
	Members     int                          `json:"members"`
	Reports     []protocol.PayeeMemberReport `json:"reports"`
	Categories  []protocol.PayeeCategory     `json:"categories"`
	FirstSeen   time.Time                    `json:"first_seen"`
	LastSeen    time.Time                    `json:"last_seen"`
	ExpiresAt   time.Time                    `json:"expires_at"`
	Contested   bool                         `json:"contested"`
	ContestedBy string                       `json:"contested_by,omitempty"`
	// Record is the compact JWS of the payee record's latest version.
	Record string `json:"record,omitempty"`
}
