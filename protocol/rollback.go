package protocol

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/tlog"
)

// ErrRollback is returned by [ParseRollback] for an entry that is not a
// well-formed declared rollback, and by [RollbackReason] for a reason that
// cannot be logged.
var ErrRollback = errors.New("malformed declared rollback")

// MaxRollbackReason bounds the reason of a declared rollback: it is one
// attribute of a log entry.
const MaxRollbackReason = 128

// A Rollback is a declared rollback of the exchange log: the hub was
// started on a data file whose tree does not extend the last checkpoint it
// had signed (a restore from an older backup), and its operator said so,
// with a reason. The hub then writes it as the first entry after the tree
// it was restored to, so Index equals NewSize, and every checkpoint it
// signs from then on covers it. Its entry is
//
//	sparr-log/1 <index> <time> operator rollback-declared ok - reason=<reason> old_size=<n> old_root=<hex> new_size=<index>
//
// OldSize and OldRoot are the last checkpoint signed before the restore:
// the entries from NewSize to OldSize-1 of that tree are given up, and the
// indexes from NewSize on are reused by new entries.
type Rollback struct {
	Index   uint64
	Reason  string
	OldSize uint64
	OldRoot tlog.Hash
	NewSize uint64
}

// RollbackReason makes the logged form of an operator's reason: spaces
// become "_", and what remains must be 1 to [MaxRollbackReason] letters,
// digits and ". _ : -" (an incident reference and a few words). It
// returns an error wrapping [ErrRollback] that says what is allowed.
func RollbackReason(text string) (string, error) {
	r := strings.Join(strings.Fields(text), "_")
	if r == "" || len(r) > MaxRollbackReason || !logAttrVal.MatchString(r) {
		return "", fmt.Errorf("%w: reason %q: want 1 to %d of the letters A-Z and a-z, digits, spaces and . _ : - (such as \"INC-4711 disk lost: restored 02:00 backup\")",
			ErrRollback, text, MaxRollbackReason)
	}
	return r, nil
}

// Attrs returns the attributes of the rollback's log entry.
func (r *Rollback) Attrs() []LogAttr {
	return []LogAttr{
		{Key: "reason", Value: r.Reason},
		{Key: "old_size", Value: strconv.FormatUint(r.OldSize, 10)},
		{Key: "old_root", Value: hex.EncodeToString(r.OldRoot[:])},
		{Key: "new_size", Value: strconv.FormatUint(r.NewSize, 10)},
	}
}

// String shows the rollback in one line, for messages.
func (r *Rollback) String() string {
	return fmt.Sprintf("entry %d: the log went back from %d entries (root %s) to %d, reason %q",
		r.Index, r.OldSize, hex.EncodeToString(r.OldRoot[:]), r.NewSize, r.Reason)
}

// ParseRollback reads a declared rollback from its log entry, whose action
// must be [LogRollbackDeclared] with result ok: the four attributes,
// exactly, in their canonical forms, new_size the entry's own index and
// below old_size. Its errors wrap [ErrRollback].
func ParseRollback(e *LogEntry) (*Rollback, error) {
	fail := func(format string, args ...any) (*Rollback, error) {
		return nil, fmt.Errorf("%w: entry %d: %s", ErrRollback, e.Index, fmt.Sprintf(format, args...))
	}
	if e.Action != LogRollbackDeclared || e.Result != "ok" {
		return fail("action %s %s, want %s ok", e.Action, e.Result, LogRollbackDeclared)
	}
	if len(e.Attrs) != 4 {
		return fail("%d attributes, want reason, old_size, old_root and new_size", len(e.Attrs))
	}
	r := &Rollback{Index: e.Index}
	num := func(key string) (uint64, bool) {
		v, _ := e.Attr(key)
		n, err := strconv.ParseUint(v, 10, 64)
		return n, err == nil && strconv.FormatUint(n, 10) == v
	}
	var ok bool
	r.Reason, _ = e.Attr("reason")
	if got, err := RollbackReason(r.Reason); err != nil || got != r.Reason {
		return fail("reason %q", r.Reason)
	}
	if r.OldSize, ok = num("old_size"); !ok {
		return fail("old_size is not a decimal number")
	}
	if r.NewSize, ok = num("new_size"); !ok || r.NewSize != e.Index {
		return fail("new_size must be the entry's own index")
	}
	root, _ := e.Attr("old_root")
	b, err := hex.DecodeString(root)
	if err != nil || len(b) != tlog.HashSize || hex.EncodeToString(b) != root {
		return fail("old_root %q is not %d bytes of lower-case hex", root, tlog.HashSize)
	}
	copy(r.OldRoot[:], b)
	if r.NewSize >= r.OldSize {
		return fail("new_size %d is not below old_size %d: a rollback goes back to fewer entries", r.NewSize, r.OldSize)
	}
	return r, nil
}
