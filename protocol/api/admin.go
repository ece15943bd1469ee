package api

// An ErasureRequest is the body of POST /v1/admin/erasures: erase
// everything the hub holds about a subject.
type ErasureRequest struct {
	// Subject is the token of the person whose data is to be erased.
	Subject string `json:"subject"`
	// LegalBasis names why, for example "gdpr-art-17": lower-case letters,
	// digits, '.' and '-'.
	LegalBasis string `json:"legal_basis"`
}

// An ErasureResponse is the answer to an [ErasureRequest]: the
// subject-erased record that tells every member to erase what it holds,
// and how much the hub erased.
type ErasureResponse struct {
	Record           string `json:"record"`
	Seq              uint64 `json:"seq"`
	LogIndex         uint64 `json:"log_index"`
	RecordsErased    int    `json:"records_erased"`
	LogEntriesErased int    `json:"log_entries_erased"`
}
