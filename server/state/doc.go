// Package state is the hub's state machine without its storage: the values
// the hub keeps (signed records, flags, suspicions, checks, submissions),
// the typed commands that change them, and the commands' versioned
// encoding.
//
// # Commands
//
// Every change to the hub's state is one [Command], of one of a small set
// of kinds ([PlaceFlag], [EndFlag], [AddCheck], [RecordDelivery], …). A
// command is decided before it is applied: whoever builds it (the hub's
// decision layer, package decide) has validated the request and chosen
// every id, salt and time, and signed every record it carries. Applying it
// (package store, over bbolt) only checks that the state it was decided
// against still holds and writes, in one transaction: the state it
// changes, the indexes, the outbox rows, the exchange-log entry and the
// submission's idempotency record. So applying the same commands in the
// same order to two stores gives two equal files, byte for byte: what a
// replicated hub needs.
//
// # Encoding
//
// [Encode] writes a command as one JSON object with the encoding's version
// and the command's kind, and [Decode] reads it back, strictly:
//
//	{"v":1,"kind":"add-check","command":{"at":"2026-11-21T10:00:01.5Z","actor":"bank-b",
//	 "entry":{"action":"check","salt":"…","details":"…","subjects":["pnr.1.…"],"attrs":[…]},
//	 "check":{"id":"0193…","member":"bank-b","purpose":"credit-application",…}}}
//
// The encoding of a command never changes within a version; testdata holds
// golden encodings of every kind, and a change to any of them is a new
// [EncodingVersion].
package state
