package clustertest

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// op builds one operation on token "t" unless in names another.
func op(client int, in FlagInput, call int64, out FlagOutput, ret int64) porcupine.Operation {
	if in.Token == "" {
		in.Token = "t"
	}
	if out.Unknown {
		ret = math.MaxInt64
	}
	return porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret}
}

var (
	place = FlagInput{Op: Place}
	check = FlagInput{Op: Check}
)

func lift(id string) FlagInput      { return FlagInput{Op: Lift, FlagID: id} }
func placed(id string) FlagOutput   { return FlagOutput{FlagID: id} }
func existing(id string) FlagOutput { return FlagOutput{FlagID: id, Existing: true} }
func sees(id string) FlagOutput     { return FlagOutput{FlagID: id} }

var (
	lifted  = FlagOutput{Lifted: true}
	refused = FlagOutput{}
	lost    = FlagOutput{Unknown: true}
)

// TestFlagModel checks the model on hand-made histories, linearizable and
// not.
func TestFlagModel(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []porcupine.Operation
		want porcupine.CheckResult
	}{
		{"place, check, lift, check in turn", []porcupine.Operation{
			op(0, place, 0, placed("f1"), 10),
			op(1, check, 11, sees("f1"), 20),
			op(0, lift("f1"), 21, lifted, 30),
			op(1, check, 31, sees(""), 40),
		}, porcupine.Ok},
		{"a check concurrent with a place may see it or not", []porcupine.Operation{
			op(0, place, 0, placed("f1"), 10),
			op(1, check, 5, sees(""), 15),
			op(2, check, 6, sees("f1"), 16),
		}, porcupine.Ok},
		{"a check after an acknowledged place misses it (stale read)", []porcupine.Operation{
			op(0, place, 0, placed("f1"), 10),
			op(1, check, 11, sees(""), 20),
		}, porcupine.Illegal},
		{"a check flips back to an older state", []porcupine.Operation{
			op(0, place, 0, placed("f1"), 10),
			op(1, check, 2, sees("f1"), 8),
			op(2, check, 9, sees(""), 12),
		}, porcupine.Illegal},
		{"two places both new, no lift between", []porcupine.Operation{
			op(0, place, 0, placed("f1"), 10),
			op(1, place, 11, placed("f2"), 20),
		}, porcupine.Illegal},
		{"two concurrent places: one new, one existing", []porcupine.Operation{
			op(0, place, 0, placed("f1"), 10),
			op(1, place, 1, existing("f1"), 9),
		}, porcupine.Ok},
		{"a lifted flag seen by a later check", []porcupine.Operation{
			op(0, place, 0, placed("f1"), 10),
			op(0, lift("f1"), 11, lifted, 20),
			op(1, check, 21, sees("f1"), 30),
		}, porcupine.Illegal},
		{"a lift refused while the flag is active", []porcupine.Operation{
			op(0, place, 0, placed("f1"), 10),
			op(0, lift("f1"), 11, refused, 20),
		}, porcupine.Illegal},
		{"a lift refused after another lifted it", []porcupine.Operation{
			op(0, place, 0, placed("f1"), 10),
			op(0, lift("f1"), 11, lifted, 20),
			op(1, lift("f1"), 21, refused, 30),
		}, porcupine.Ok},
		{"a place whose answer was lost, seen later", []porcupine.Operation{
			op(0, place, 0, lost, 0),
			op(1, check, 5, sees(""), 10),
			op(1, check, 20, sees("f9"), 30),
			op(1, check, 31, sees("f9"), 40),
		}, porcupine.Ok},
		{"a place whose answer was lost, never applied", []porcupine.Operation{
			op(0, place, 0, lost, 0),
			op(1, check, 20, sees(""), 30),
			op(2, place, 31, placed("f2"), 40),
		}, porcupine.Ok},
		{"a lost place seen, then unseen with no lift", []porcupine.Operation{
			op(0, place, 0, lost, 0),
			op(1, check, 20, sees("f9"), 30),
			op(1, check, 31, sees(""), 40),
		}, porcupine.Illegal},
		{"a lost place and a flag of another id", []porcupine.Operation{
			op(0, place, 0, lost, 0),
			op(1, check, 20, sees("f9"), 30),
			op(1, check, 31, sees("f8"), 40),
		}, porcupine.Illegal},
		{"a lift whose answer was lost, applied or not", []porcupine.Operation{
			op(0, place, 0, placed("f1"), 10),
			op(0, lift("f1"), 11, lost, 0),
			op(1, check, 20, sees("f1"), 30),
			op(1, check, 31, sees(""), 40),
		}, porcupine.Ok},
		{"tokens are independent", []porcupine.Operation{
			op(0, FlagInput{Token: "a", Op: Place}, 0, placed("fa"), 10),
			op(1, FlagInput{Token: "b", Op: Check}, 11, sees(""), 20),
			op(1, FlagInput{Token: "a", Op: Check}, 21, sees("fa"), 30),
		}, porcupine.Ok},
		{"a stale read on one token among others", []porcupine.Operation{
			op(0, FlagInput{Token: "a", Op: Place}, 0, placed("fa"), 10),
			op(1, FlagInput{Token: "b", Op: Place}, 0, placed("fb"), 10),
			op(1, FlagInput{Token: "b", Op: Check}, 21, sees(""), 30),
		}, porcupine.Illegal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var vis bytes.Buffer
			got, err := CheckFlags(tc.ops, 10*time.Second, &vis)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
			if got == porcupine.Illegal && !strings.Contains(vis.String(), "<html") {
				t.Errorf("no visualization written for an illegal history")
			}
		})
	}
}

// TestRecorder: operations recorded concurrently come back with their
// times, lost ones open to the end, lost checks left out.
func TestRecorder(t *testing.T) {
	r := NewRecorder()
	call := r.Now()
	r.Add(0, FlagInput{Token: "t", Op: Place}, call, placed("f1"))
	r.Lost(1, FlagInput{Token: "t", Op: Check}, r.Now())
	r.Lost(1, FlagInput{Token: "t", Op: Lift, FlagID: "f1"}, r.Now())
	ops := r.Operations()
	if len(ops) != 2 {
		t.Fatalf("got %d operations, want 2 (a lost check is left out)", len(ops))
	}
	if ops[0].Return < ops[0].Call {
		t.Errorf("answered at %d before called at %d", ops[0].Return, ops[0].Call)
	}
	if ops[1].Return != math.MaxInt64 {
		t.Errorf("a lost lift returns at %d, want the end of time", ops[1].Return)
	}
	if res, err := CheckFlags(ops, time.Second, nil); err != nil || res != porcupine.Ok {
		t.Errorf("got %s, %v; want Ok", res, err)
	}
}
