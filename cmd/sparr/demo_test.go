package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemo runs the demo as "go run ./cmd/sparr demo" does, and checks
// that it tells the whole story, exits 0, and leaves nothing behind.
func TestDemo(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	start := time.Now()
	code, out, errb := sparr(t, nil, "demo")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q\nstdout:\n%s", code, errb, out)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("the demo took %s; it should take a few seconds", took)
	}
	for _, want := range []string{
		`Step 1\. A consumer asks Bank A to protect their personnummer\.`,
		`Bank A turns 19090527\+1474 into an anonymous token`,
		`Step 2\. Every bank receives the signed flag\.`,
		`Bank B: received it, checked the hub's signature, and stored it, \d+ ms after Bank A sent the flag\.`,
		`Bank C: received it, checked the hub's signature, and stored it, \d+ ms after Bank A sent the flag\.`,
		`Step 3\. A fraudster applies for credit at Bank B`,
		`Bank B's own replica answers in \d+\.\d µs: VERIFY`,
		`The replica reports its check to the hub`,
		`The hub confirms: VERIFY`,
		`Step 4\. Bank A's app tells the consumer about Bank B's check, and the consumer says "not me"\.`,
		`Bank A received the hub's signed access notice \d+ ms after Bank B's check was answered\.`,
		`Bank B checked your identity for a credit application at \d\d:\d\d\. Was this you\?`,
		`Bank B received the hub's signed check-denied record \d+ ms later`,
		`A later check at Bank B shows the denial`,
		`Step 5\. The consumer thaws the flag for an hour, to apply for a loan at Bank C\.`,
		`Bank C's check says NONE: the flag is thawed until \d\d:\d\d`,
		`Step 6\. The consumer lifts the flag`,
		`Bank A: its replica no longer holds the flag`,
		`Bank B: its replica no longer holds the flag`,
		`Bank C: its replica no longer holds the flag`,
		`Step 7\. What the exchange log now holds\.`,
		`checkpoint of its log: \d+ entries`,
		`\n +1  flag-placed `,
		`\n +1  flag-lifted `,
		`\n +2  replica-check `,
		`\n +1  check-denied `,
		`All 7 steps behaved as described\.`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("the narration lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Bank D") {
		t.Errorf("three banks by default, but Bank D appears")
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("the demo left %d files in its temporary directory", len(left))
	}
}

// TestDemoMembers runs the story with four banks, and refuses too few.
func TestDemoMembers(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	code, out, errb := sparr(t, nil, "demo", "--members", "4")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errb)
	}
	if !strings.Contains(out, "one hub and 4 member banks") || !regexp.MustCompile(`Bank D: received it`).MatchString(out) ||
		!strings.Contains(out, "Bank D: its replica no longer holds the flag") {
		t.Errorf("Bank D does not take part:\n%s", out)
	}
	code, _, errb = sparr(t, nil, "demo", "--members", "2")
	wantError(t, code, errb, 2, "--members 2", "3 to 26")
}

// TestDemoFailingStep leaves out the lift: the banks never forget the
// flag, and the demo says which step failed and exits 1.
func TestDemoFailingStep(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	demoSkip = func(step int) bool { return step == 6 }
	demoWait = 500 * time.Millisecond
	t.Cleanup(func() { demoSkip, demoWait = nil, 10*time.Second })
	code, out, errb := sparr(t, nil, "demo")
	wantError(t, code, errb, 1, "step 6 (the consumer lifts the flag and every bank forgets it) did not behave as described", "forgetting the flag")
	if strings.Contains(out, "All 7 steps") || strings.Contains(out, "Step 7.") {
		t.Errorf("the demo went on after the failed step:\n%s", out)
	}
}

// TestDemoScam runs the scam story: the payee shared, Bank C warned, the
// recall routed to Bank B alone and answered, and the supervisor's count.
func TestDemoScam(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	code, out, errb := sparr(t, nil, "demo", "--scam")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q\nstdout:\n%s", code, errb, out)
	}
	for _, want := range []string{
		`Bank A's payment screening \(its replica\) knows nothing of 83279-1234567890 \(SE\d{22}, bank SE:800\): none\.`,
		`Bank C has it in its replica [0-9.]+[µm]?s after it was sent\.`,
		`Bank C's replica answers in [0-9.]+[µnm]?s: warn — reported by 2 customers at 1 bank\(s\)`,
		`The hub routes it by the bank code \(SE:800\) to Bank B, which has it [0-9.]+[µm]?s after it was sent\.`,
		`No other bank receives it\.`,
		`freezes the 31500\.00 SEK left`,
		`bank-a>bank-b: 1 recall requested, 1 acknowledged`,
		`All 6 steps behaved as described\.`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("the output does not match %q:\n%s", want, out)
		}
	}
}

// TestDemoScamFailingStep leaves out Bank B's outcome: Bank A never sees
// the money frozen, and the demo says so and exits 1.
func TestDemoScamFailingStep(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	demoSkip = func(step int) bool { return step == 5 }
	demoWait = 500 * time.Millisecond
	t.Cleanup(func() { demoSkip, demoWait = nil, 10*time.Second })
	code, out, errb := sparr(t, nil, "demo", "--scam")
	wantError(t, code, errb, 1, "step 5 (Bank B acknowledges and freezes what is left) did not behave as described", "seeing the money frozen")
	if strings.Contains(out, "Step 6.") {
		t.Errorf("the demo went on after the failed step:\n%s", out)
	}
}

// TestDemoCluster runs the story on a cluster of three node processes of a
// sparr built for the test, and kills the leader after step 3: every step
// still behaves, the demo says which node was killed and which took over,
// and nothing is left behind.
func TestDemoCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three nodes")
	}
	bin := buildSparr(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	demoBinary = func() (string, error) { return bin, nil }
	t.Cleanup(func() { demoBinary = os.Executable })
	code, out, errb := sparr(t, nil, "demo", "--cluster", "3")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q\nstdout:\n%s", code, errb, out)
	}
	for _, want := range []string{
		`The hub is a cluster of 3 nodes`,
		`Step 3\. A fraudster applies for credit at Bank B`,
		`Meanwhile, the hub's leader, node n\d, is killed with SIGKILL`,
		`Node n\d took over as leader \d+ ms later`,
		`Node n\d started again on its data and caught up with the others`,
		`Step 4\. Bank A's app tells the consumer about Bank B's check`,
		`Bank A received the hub's signed access notice`,
		`Bank C: its replica no longer holds the flag`,
		`\n +1  flag-lifted `,
		`All 7 steps behaved as described\.`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("the narration lacks %q:\n%s", want, out)
		}
	}
	m := regexp.MustCompile(`leader, node (n\d), is killed[\s\S]*Node (n\d) took over`).FindStringSubmatch(out)
	if m == nil || m[1] == m[2] {
		t.Errorf("the killed leader and the new one: got %q, want two different nodes", m)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("the demo left %d files in its temporary directory", len(left))
	}
}

// TestDemoClusterFlags refuses a cluster too small to lose a node, and a
// cluster with the scam story.
func TestDemoClusterFlags(t *testing.T) {
	code, _, errb := sparr(t, nil, "demo", "--cluster", "2")
	wantError(t, code, errb, 2, "--cluster 2", "3 to 7 nodes")
	code, _, errb = sparr(t, nil, "demo", "--cluster", "3", "--scam")
	wantError(t, code, errb, 2, "--cluster", "drop --scam")
}
