package protocol

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ErrLogEntry is returned by [ParseLogEntry] for a line that is not an
// exchange-log entry in its one canonical form, and by [LogEntry.Marshal]
// for an entry that cannot be written as one.
var ErrLogEntry = errors.New("malformed log entry")

// LogEntryVersion is the first field of every exchange-log entry.
const LogEntryVersion = "sparr-log/1"

// MaxLogEntrySize bounds one entry, newline included.
const MaxLogEntrySize = 1024

// A LogEntry is one line of the hub's exchange log: what happened (Action
// and Result), when, at whose request, and a salted SHA-256 commitment to
// the details. It never holds an identifier or a token: the details and
// their salt are kept beside the log, where erasure can delete them, after
// which the commitment links to nothing. Its text form is one line:
//
//	sparr-log/1 <index> <time> <member> <action> <result> <commitment> [<key>=<value> …]
//	sparr-log/1 41 2026-11-21T10:00:00.000000000Z bank-a flag-placed ok sha256:9f86…0a08
//	sparr-log/1 42 2026-11-21T10:00:00.184000000Z bank-b delivery ok - event=17 attempts=1 latency_ms=4
//
// Fields are separated by one space and the line ends with "\n"; index is
// the entry's position in the log, from 0; time is UTC with exactly nine
// fractional digits; result is "ok" or "rejected:<problem slug>"; the
// commitment is "sha256:" and 64 lower-case hex digits, or "-" when there
// are no details. Attributes carry only non-identifying values.
type LogEntry struct {
	Index      uint64
	Time       time.Time
	Member     string
	Action     LogAction
	Result     string
	Commitment []byte // nil, or 32 bytes
	Attrs      []LogAttr
}

// A LogAttr is one key=value attribute of a [LogEntry].
type LogAttr struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

const logTimeFormat = "2006-01-02T15:04:05.000000000Z"

var (
	logAction   = regexp.MustCompile(`^[a-z][a-z0-9.-]{0,63}$`)
	logResult   = regexp.MustCompile(`^(ok|rejected:[a-z][a-z0-9-]{0,63})$`)
	logAttrKey  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
	logAttrVal  = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	maxLogAttrs = 16
)

// LogCommitment returns SHA-256(salt ‖ details): the commitment a log entry
// carries for its details.
func LogCommitment(salt, details []byte) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write(details)
	return h.Sum(nil)
}

// Marshal returns the entry's line, newline included.
func (e *LogEntry) Marshal() ([]byte, error) {
	fail := func(format string, args ...any) ([]byte, error) {
		return nil, fmt.Errorf("%w: %s", ErrLogEntry, fmt.Sprintf(format, args...))
	}
	switch {
	case e.Time.IsZero() || e.Time.Year() > 9999 || e.Time.Year() < 1970:
		return fail("time %v out of range", e.Time)
	case !idPattern.MatchString(e.Member):
		return fail("member %q is not an id", e.Member)
	case !logAction.MatchString(string(e.Action)):
		return fail("action %q", e.Action)
	case !logResult.MatchString(e.Result):
		return fail("result %q (want ok or rejected:<slug>)", e.Result)
	case e.Commitment != nil && len(e.Commitment) != sha256.Size:
		return fail("commitment of %d bytes, want %d", len(e.Commitment), sha256.Size)
	case len(e.Attrs) > maxLogAttrs:
		return fail("%d attributes, at most %d", len(e.Attrs), maxLogAttrs)
	}
	var b bytes.Buffer
	b.WriteString(LogEntryVersion)
	b.WriteByte(' ')
	b.WriteString(strconv.FormatUint(e.Index, 10))
	b.WriteByte(' ')
	b.WriteString(e.Time.UTC().Format(logTimeFormat))
	for _, f := range []string{e.Member, string(e.Action), e.Result} {
		b.WriteByte(' ')
		b.WriteString(f)
	}
	b.WriteByte(' ')
	if e.Commitment == nil {
		b.WriteByte('-')
	} else {
		b.WriteString("sha256:")
		b.WriteString(hex.EncodeToString(e.Commitment))
	}
	seen := map[string]bool{}
	for _, a := range e.Attrs {
		if !logAttrKey.MatchString(a.Key) || !logAttrVal.MatchString(a.Value) || seen[a.Key] {
			return fail("attribute %q=%q", a.Key, a.Value)
		}
		seen[a.Key] = true
		b.WriteByte(' ')
		b.WriteString(a.Key)
		b.WriteByte('=')
		b.WriteString(a.Value)
	}
	b.WriteByte('\n')
	if b.Len() > MaxLogEntrySize {
		return fail("%d bytes, at most %d", b.Len(), MaxLogEntrySize)
	}
	return b.Bytes(), nil
}

// Attr returns the value of the attribute key, if present.
func (e *LogEntry) Attr(key string) (string, bool) {
	for _, a := range e.Attrs {
		if a.Key == key {
			return a.Value, true
		}
	}
	return "", false
}

// ParseLogEntry parses one entry line (with its final newline) strictly:
// what it accepts, [LogEntry.Marshal] writes back byte for byte.
func ParseLogEntry(line []byte) (*LogEntry, error) {
	fail := func(format string, args ...any) (*LogEntry, error) {
		return nil, fmt.Errorf("%w: %s", ErrLogEntry, fmt.Sprintf(format, args...))
	}
	if len(line) > MaxLogEntrySize {
		return fail("%d bytes, at most %d", len(line), MaxLogEntrySize)
	}
	text, ok := strings.CutSuffix(string(line), "\n")
	if !ok || strings.ContainsAny(text, "\n\r\t") {
		return fail("want one line ending in a single newline")
	}
	f := strings.Split(text, " ")
	if len(f) < 7 {
		return fail("%d fields, want at least 7", len(f))
	}
	if f[0] != LogEntryVersion {
		return fail("version %q, want %q", f[0], LogEntryVersion)
	}
	e := &LogEntry{Member: f[3], Action: LogAction(f[4]), Result: f[5]}
	idx, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil || (f[1] != "0" && f[1][0] == '0') {
		return fail("index %q", f[1])
	}
	e.Index = idx
	if e.Time, err = time.Parse(logTimeFormat, f[2]); err != nil {
		return fail("time %q (want %s)", f[2], logTimeFormat)
	}
	if f[6] != "-" {
		h, ok := strings.CutPrefix(f[6], "sha256:")
		c, err := hex.DecodeString(h)
		if !ok || err != nil || len(c) != sha256.Size || h != strings.ToLower(h) {
			return fail("commitment %q", f[6])
		}
		e.Commitment = c
	}
	for _, kv := range f[7:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fail("attribute %q is not key=value", kv)
		}
		e.Attrs = append(e.Attrs, LogAttr{Key: k, Value: v})
	}
	// Marshal checks every remaining rule; requiring the same bytes back
	// makes the text form canonical.
	again, err := e.Marshal()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, line) {
		return fail("not in canonical form")
	}
	return e, nil
}
