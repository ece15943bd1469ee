package protocol

import (
	"encoding/base64"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// ParseProofHashes decodes the hashes of an inclusion or consistency proof
// as the hub's log API serves them, each in standard base64, into the
// hashes [tlog.CheckRecord] and [tlog.CheckTree] take (a [tlog.RecordProof]
// or [tlog.TreeProof] is a []tlog.Hash). Its error names the first hash,
// by its position, that is not [tlog.HashSize] bytes of base64.
func ParseProofHashes(hashes []string) ([]tlog.Hash, error) {
	proof := make([]tlog.Hash, len(hashes))
	for i, s := range hashes {
		h, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(h) != tlog.HashSize {
			return nil, fmt.Errorf("hash %d is not %d bytes of base64", i, tlog.HashSize)
		}
		copy(proof[i][:], h)
	}
	return proof, nil
}
