package clustertest

import (
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// An Op is what a client asked the hub about one token.
type Op int

const (
	// Place places a protection flag on the token.
	Place Op = iota
	// Lift lifts the flag FlagInput.FlagID.
	Lift
	// Check checks the token.
	Check
)

func (o Op) String() string {
	switch o {
	case Place:
		return "place"
	case Lift:
		return "lift"
	case Check:
		return "check"
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

// A FlagInput is one client operation on one token.
type FlagInput struct {
	Token string
	Op    Op
	// FlagID is the flag a Lift lifts.
	FlagID string
}

// A FlagOutput is the hub's answer to a [FlagInput].
type FlagOutput struct {
	// Unknown: no answer came (the request timed out, the connection
	// broke, the node died), so the operation may or may not have taken
	// effect, at any time after its call. Record it with [Recorder.Lost].
	Unknown bool
	// FlagID is, for Place, the flag placed or the one that already
	// protected the token; for Check, the token's active flag, "" if none.
	FlagID string
	// Existing: a Place found the token protected already.
	Existing bool
	// Lifted: a Lift lifted the flag (false: the hub refused, because the
	// flag was not active).
	Lifted bool
}

// unknownFlag is the state of a token protected by a flag whose id no
// answer told: a Place whose answer was lost took effect.
const unknownFlag = "?"

// FlagModel returns the model of one token's protection, the state being
// the id of its active flag ("" for none): a place on an unprotected token
// protects it with a new flag, one on a protected token answers that flag
// as existing; a lift of the active flag ends it and is refused otherwise;
// a check answers the active flag. Operations are partitioned by token.
// An operation whose outcome is unknown may or may not have taken effect.
func FlagModel() porcupine.Model {
	m := porcupine.NondeterministicModel{
		Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
			by := map[string][]porcupine.Operation{}
			var order []string
			for _, op := range h {
				tok := op.Input.(FlagInput).Token
				if _, ok := by[tok]; !ok {
					order = append(order, tok)
				}
				by[tok] = append(by[tok], op)
			}
			out := make([][]porcupine.Operation, 0, len(order))
			for _, tok := range order {
				out = append(out, by[tok])
			}
			return out
		},
		Init: func() []any { return []any{""} },
		Step: func(state, input, output any) []any {
			return flagStep(state.(string), input.(FlagInput), output.(FlagOutput))
		},
		DescribeOperation: func(input, output any) string {
			in, out := input.(FlagInput), output.(FlagOutput)
			switch {
			case out.Unknown:
				return fmt.Sprintf("%s %s → ?", in.Op, in.FlagID)
			case in.Op == Place && out.Existing:
				return fmt.Sprintf("place → existing %s", out.FlagID)
			case in.Op == Place:
				return fmt.Sprintf("place → %s", out.FlagID)
			case in.Op == Lift:
				return fmt.Sprintf("lift %s → %v", in.FlagID, out.Lifted)
			}
			return fmt.Sprintf("check → %q", out.FlagID)
		},
		DescribeState: func(state any) string { return fmt.Sprintf("%q", state) },
	}
	return m.ToModel()
}

// flagStep returns the states a token in state s can be in after the
// operation in answered out; none if the answer is impossible in s.
func flagStep(s string, in FlagInput, out FlagOutput) []any {
	one := func(s string) []any { return []any{s} }
	if out.Unknown {
		switch {
		case in.Op == Place && s == "":
			return []any{"", unknownFlag}
		case in.Op == Lift && (s == in.FlagID || s == unknownFlag):
			return []any{s, ""}
		}
		return one(s)
	}
	switch in.Op {
	case Check:
		switch {
		case out.FlagID == s:
			return one(s)
		case out.FlagID != "" && s == unknownFlag:
			// The check tells the flag's id.
			return one(out.FlagID)
		}
		return nil
	case Place:
		switch {
		case !out.Existing && s == "" && out.FlagID != "":
			return one(out.FlagID)
		case out.Existing && (s == out.FlagID || s == unknownFlag):
			return one(out.FlagID)
		}
		return nil
	case Lift:
		switch {
		case out.Lifted && (s == in.FlagID || s == unknownFlag):
			return one("")
		case !out.Lifted && s != in.FlagID:
			return one(s)
		}
		return nil
	}
	return nil
}

// A Recorder records a concurrent history of client operations, with
// monotonic times of their calls and answers. It is safe for concurrent
// use.
type Recorder struct {
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
}

// NewRecorder returns an empty recorder whose clock starts now.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

// Now is the recorder's clock: nanoseconds since it started.
func (r *Recorder) Now() int64 { return int64(time.Since(r.start)) }

// Add records an operation of client that was called at call (from
// [Recorder.Now]) and has just been answered.
func (r *Recorder) Add(client int, in FlagInput, call int64, out FlagOutput) {
	ret := r.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
}

// Lost records an operation called at call whose answer never came: it
// may take effect at any time after call, so it stays open to the end of
// the history. A check whose answer was lost changes nothing and is left
// out.
func (r *Recorder) Lost(client int, in FlagInput, call int64) {
	if in.Op == Check {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: FlagOutput{Unknown: true}, Return: math.MaxInt64})
}

// Operations returns the recorded history.
func (r *Recorder) Operations() []porcupine.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]porcupine.Operation(nil), r.ops...)
}

// CheckFlags checks a history against [FlagModel] within timeout and, if
// it is not linearizable (or the check timed out) and vis is not nil,
// writes porcupine's HTML visualization of it to vis.
func CheckFlags(ops []porcupine.Operation, timeout time.Duration, vis io.Writer) (porcupine.CheckResult, error) {
	model := FlagModel()
	res, info := porcupine.CheckOperationsVerbose(model, ops, timeout)
	if res != porcupine.Ok && vis != nil {
		if err := porcupine.Visualize(model, info, vis); err != nil {
			return res, err
		}
	}
	return res, nil
}
