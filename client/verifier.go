package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// Errors that say a record verifies under the hub's keys but is not where
// the hub's answer puts it. A [Verifier] returns them inside a
// [*RecordError], which carries the record; each also matches
// protocol.ErrInvalidClaim.
var (
	// ErrWrongSubject: a record is not about the token the answer is for:
	// a flag record in a check's answer, the record of an erasure.
	ErrWrongSubject = errors.New("record about another subject")
	// ErrWrongObject: a record is not of the flag, the suspicion or the
	// record id that the answer puts it under.
	ErrWrongObject = errors.New("record of another flag, suspicion or id")
	// ErrWrongSubmission: the record in a write's answer has another txn
	// than the submission's jti.
	ErrWrongSubmission = errors.New("record of another submission")
	// ErrWrongType: the record is of another event type than the answer
	// announces, or than the request makes (an erasure's record is
	// subject-erased).
	ErrWrongType = errors.New("record of another type than announced")
)

// Errors that say an answer does not fit the request it answers. A
// [Verifier] returns them inside an [*AnswerError].
var (
	// ErrInvalidAnswer matches every [*AnswerError].
	ErrInvalidAnswer = errors.New("answer does not fit the request")
	// ErrWrongResults: a check's answer has another number of results
	// than tokens were checked, or in some place a result for another
	// token than was checked there.
	ErrWrongResults = errors.New("results do not match the tokens checked")
	// ErrOutOfOrder: a feed page's sequence numbers do not rise from the
	// cursor, or its next cursor is before its last event.
	ErrOutOfOrder = errors.New("sequence numbers out of order")
)

// An AnswerError is an answer of the hub that does not fit the request it
// answers: not the JSON expected, results for other tokens than were
// checked, sequence numbers that go backwards. Nothing of the answer was
// used. It carries the evidence, the answer exactly as received.
// errors.Is(err, [ErrInvalidAnswer]) holds, and so does errors.Is with the
// sentinel underneath ([ErrWrongResults], [ErrOutOfOrder]) when there is
// one.
type AnswerError struct {
	// Op is the request answered, "GET /v1/events".
	Op string
	// Answer is the answer's body as received.
	Answer []byte
	// Err says what was wrong.
	Err error
}

func (e *AnswerError) Error() string { return e.Op + ": invalid answer: " + e.Err.Error() }

// Unwrap returns the cause.
func (e *AnswerError) Unwrap() error { return e.Err }

// Is makes every AnswerError an [ErrInvalidAnswer].
func (e *AnswerError) Is(target error) bool { return target == ErrInvalidAnswer }

// A Verifier checks the hub's answers, given as the bytes the hub sent,
// and turns them into results. It verifies every record against the hub's
// keys and checks that each record is where the answer puts it: a check's
// flag records about the token and the flag, a write's record of the
// submission, the feed's records of the type announced and in sequence
// order. It does no I/O of its own but fetching the hub's keys through its
// [Keys]' [KeySource], so it can be tested, and used by a tool that fetches
// answers its own way, without HTTP, as golang.org/x/mod/sumdb's client
// verifies what its ClientOps fetch.
// [Client] fetches each answer and has its Verifier check it.
//
// A record that does not verify, or is not where the answer puts it, is a
// [*RecordError]; an answer that does not fit the request an
// [*AnswerError]; failing to fetch the hub's keys is neither, and worth
// retrying.
type Verifier struct {
	// Keys verifies records against the hub's keys.
	Keys *Keys
	// Homes, if set, returns the key caches of the home hubs the hub
	// relays checks and writes to: a record of a check or write that the
	// hub's keys do not verify is verified with theirs ([Client] sets it
	// from the configuration's home_tokens).
	Homes func(ctx context.Context) ([]*Keys, error)
}

// Check checks the answer to a check of tokens: a result for each token,
// in order, and every flag record verified and about that token and that
// flag.
func (v *Verifier) Check(ctx context.Context, tokens []protocol.Token, answer []byte) (*CheckResult, error) {
	const op = "POST /v1/check"
	var a api.CheckResponse
	if err := decodeAnswer(op, answer, &a); err != nil {
		return nil, err
	}
	if len(a.Results) != len(tokens) {
		return nil, &AnswerError{Op: op, Answer: answer, Err: fmt.Errorf("%w: %d results for %d tokens", ErrWrongResults, len(a.Results), len(tokens))}
	}
	res := &CheckResult{ID: a.CheckID, CheckedAt: a.CheckedAt, LogIndex: a.LogIndex, Results: make([]TokenResult, len(a.Results))}
	for i, r := range a.Results {
		if r.Token != tokens[i] {
			return nil, &AnswerError{Op: op, Answer: answer, Err: fmt.Errorf("%w: result %d is for another token than was checked", ErrWrongResults, i)}
		}
		tr := TokenResult{Token: r.Token, Advice: r.Advice}
		if f := r.Flag; f != nil {
			cf := &CheckedFlag{ID: f.FlagID, Kind: f.Kind, Thawed: f.Thawed, ThawUntil: f.ThawUntil, ExpiresAt: f.ExpiresAt, JWS: f.Records}
			for _, jws := range f.Records {
				rec, err := v.verify(ctx, []byte(jws))
				if err != nil {
					return nil, err
				}
				if err := flagRecordOf(rec, jws, r.Token, f.FlagID); err != nil {
					return nil, err
				}
				cf.Records = append(cf.Records, rec)
			}
			tr.Flag = cf
		}
		tr.Suspicions = r.Suspicions
		if d := r.Denied; d != nil {
			cd := &CheckedDenial{Count: d.Count, LastDeniedAt: d.LastDeniedAt}
			for _, jws := range d.Records {
				rec, err := v.verify(ctx, []byte(jws))
				if err != nil {
					return nil, err
				}
				subjects, _ := rec.Subject.Tokens()
				if _, ok := rec.Event.(protocol.CheckDenied); !ok || !slices.Contains(subjects, r.Token) {
					return nil, &RecordError{JWS: jws, Err: fmt.Errorf("%w (%w): the record is not a denial of a check of the token", ErrWrongSubject, protocol.ErrInvalidClaim)}
				}
				cd.Records = append(cd.Records, rec)
			}
			tr.Denied = cd
		}
		res.Results[i] = tr
	}
	return res, nil
}

// flagRecordOf checks that a verified record is about tok and of the flag
// flagID.
func flagRecordOf(rec *protocol.Record, jws string, tok protocol.Token, flagID string) error {
	subjects, _ := rec.Subject.Tokens()
	if !slices.Contains(subjects, tok) {
		return &RecordError{JWS: jws, Err: fmt.Errorf("%w (%w): the record is not about the token checked", ErrWrongSubject, protocol.ErrInvalidClaim)}
	}
	if id, ok := FlagID(rec.Event); !ok || id != flagID {
		return &RecordError{JWS: jws, Err: fmt.Errorf("%w (%w): the record is not of flag %q", ErrWrongObject, protocol.ErrInvalidClaim, flagID)}
	}
	return nil
}

// Write checks the answer to a signed submission: its record, if it has
// one, verified and of the submission (its txn is the submission's jti).
// If the record does not fit, the write has happened but the answer cannot
// be trusted: the error is a [*RecordError] and the result holds what the
// hub answered, without Record.
func (v *Verifier) Write(ctx context.Context, s *Submission, answer []byte) (*WriteResult, error) {
	var a api.WriteResponse
	if err := decodeAnswer("POST "+s.Path, answer, &a); err != nil {
		return nil, err
	}
	res := &WriteResult{SubmissionID: s.ID, Flag: a.Flag, Suspicion: a.Suspicion, Payee: a.Payee, Recall: a.Recall, RecordJWS: a.Record, Existing: a.Existing, Seq: a.Seq, LogIndex: a.LogIndex}
	if a.Record == "" {
		// Existing, or a repeated submission whose record a later lift or
		// retraction has erased.
		return res, nil
	}
	rec, err := v.verify(ctx, []byte(a.Record))
	if err != nil {
		return res, err
	}
	if rec.Txn != s.ID {
		return res, &RecordError{JWS: a.Record, Err: fmt.Errorf("%w (%w): the record's txn is %q, not this submission %q", ErrWrongSubmission, protocol.ErrInvalidClaim, rec.Txn, s.ID)}
	}
	res.Record = rec
	return res, nil
}

// Feed checks a page of the feed read after the cursor: sequence numbers
// that rise from the cursor, a next cursor not before the last event, and
// every record verified and of the type announced.
func (v *Verifier) Feed(ctx context.Context, after uint64, answer []byte) (*FeedPage, error) {
	const op = "GET /v1/events"
	var a api.FeedPage
	if err := decodeAnswer(op, answer, &a); err != nil {
		return nil, err
	}
	last := after
	for _, fe := range a.Events {
		if fe.Seq <= last {
			return nil, &AnswerError{Op: op, Answer: answer, Err: fmt.Errorf("%w: event %d after %d", ErrOutOfOrder, fe.Seq, last)}
		}
		last = fe.Seq
	}
	if a.Next < last {
		return nil, &AnswerError{Op: op, Answer: answer, Err: fmt.Errorf("%w: next cursor %d is before the last event %d", ErrOutOfOrder, a.Next, last)}
	}
	events, err := v.events(ctx, a.Events)
	if err != nil {
		return nil, err
	}
	return &FeedPage{Events: events, Next: a.Next, More: a.More}, nil
}

// Record checks the answer to a request for the record jti: the record
// verified, of the type announced, and with that jti.
func (v *Verifier) Record(ctx context.Context, jti string, answer []byte) (*Event, error) {
	var a api.RecordResponse
	if err := decodeAnswer("GET /v1/records/"+url.PathEscape(jti), answer, &a); err != nil {
		return nil, err
	}
	e, err := v.Event(ctx, a.Seq, a.Type, a.JWS)
	if err != nil {
		return nil, err
	}
	if e.Record.ID != jti {
		return nil, &RecordError{JWS: a.JWS, Err: fmt.Errorf("%w (%w): asked for record %q, got %q", ErrWrongObject, protocol.ErrInvalidClaim, jti, e.Record.ID)}
	}
	return e, nil
}

// SuspicionDetails checks the answer to a request for the details of the
// suspicion suspicionID: every record verified and of that suspicion.
func (v *Verifier) SuspicionDetails(ctx context.Context, suspicionID string, answer []byte) (*SuspicionDetails, error) {
	var a api.DetailsResponse
	if err := decodeAnswer("POST /v1/suspicions/"+url.PathEscape(suspicionID)+"/details", answer, &a); err != nil {
		return nil, err
	}
	d := &SuspicionDetails{Suspicion: a.Suspicion, JWS: a.Records, LogIndex: a.LogIndex}
	for _, jws := range a.Records {
		rec, err := v.Keys.Verify(ctx, []byte(jws))
		if err != nil {
			return nil, err
		}
		if id, ok := SuspicionID(rec.Event); !ok || id != suspicionID {
			return nil, &RecordError{JWS: jws, Err: fmt.Errorf("%w (%w): the record is not of suspicion %q", ErrWrongObject, protocol.ErrInvalidClaim, suspicionID)}
		}
		d.Records = append(d.Records, rec)
	}
	return d, nil
}

// Erasure checks the answer to an erasure of subject: its record verified,
// a subject-erased record, and about subject. If the record does not fit,
// the erasure has happened but the answer cannot be trusted: the error is
// a [*RecordError] and the result holds what the hub answered, without
// Record.
func (v *Verifier) Erasure(ctx context.Context, subject protocol.Token, answer []byte) (*ErasureResult, error) {
	var a api.ErasureResponse
	if err := decodeAnswer("POST /v1/admin/erasures", answer, &a); err != nil {
		return nil, err
	}
	res := &ErasureResult{RecordJWS: a.Record, Seq: a.Seq, LogIndex: a.LogIndex, RecordsErased: a.RecordsErased, LogEntriesErased: a.LogEntriesErased}
	rec, err := v.Keys.Verify(ctx, []byte(a.Record))
	if err != nil {
		return res, err
	}
	if t := rec.Event.EventType(); t != protocol.EventSubjectErased {
		return res, &RecordError{JWS: a.Record, Err: fmt.Errorf("%w (%w): the answer to an erasure carries a %s record", ErrWrongType, protocol.ErrInvalidClaim, t.Short())}
	}
	if subjects, _ := rec.Subject.Tokens(); !slices.Contains(subjects, subject) {
		return res, &RecordError{JWS: a.Record, Err: fmt.Errorf("%w (%w): the record is not about the subject erased", ErrWrongSubject, protocol.ErrInvalidClaim)}
	}
	res.Record = rec
	return res, nil
}

// Event verifies one record of the feed or a snapshot, announced with its
// sequence number and event type, and checks that it is of that type.
func (v *Verifier) Event(ctx context.Context, seq uint64, typ protocol.EventType, jws string) (*Event, error) {
	rec, err := v.Keys.Verify(ctx, []byte(jws))
	if err != nil {
		return nil, err
	}
	if t := rec.Event.EventType(); t != typ {
		return nil, &RecordError{JWS: jws, Err: fmt.Errorf("%w (%w): announced as %s but the record is %s", ErrWrongType, protocol.ErrInvalidClaim, typ.Short(), t.Short())}
	}
	return &Event{Seq: seq, Type: typ, JWS: jws, Record: rec}, nil
}

// events verifies records on every core and returns them in the order
// given; on failure, the error of the first record (in that order) that
// failed.
func (v *Verifier) events(ctx context.Context, fes []api.FeedEvent) ([]*Event, error) {
	out := make([]*Event, len(fes))
	errs := make([]error, len(fes))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(fes)) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(fes); i = int(next.Add(1) - 1) {
				out[i], errs[i] = v.Event(ctx, fes[i].Seq, fes[i].Type, fes[i].JWS)
				if errs[i] == nil {
					out[i].Via = fes[i].Via
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// decodeAnswer decodes an answer's JSON into out.
func decodeAnswer(op string, answer []byte, out any) error {
	if err := json.Unmarshal(answer, out); err != nil {
		return &AnswerError{Op: op, Answer: answer, Err: fmt.Errorf("not the JSON expected: %w", err)}
	}
	return nil
}
