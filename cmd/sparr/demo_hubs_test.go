package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDemoHubs runs the cross-border story: two peered hubs, a flag placed
// in Sweden stopping a fraudster in Norway with the Swedish hub's signed
// record, the lift seen from Norway, and both logs verified.
func TestDemoHubs(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	code, out, errb := sparr(t, nil, "demo", "--hubs", "se,no")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q\nstdout:\n%s", code, errb, out)
	}
	for _, want := range []string{
		`The SE operator registers hub-no as the home hub of NO numbers`,
		`The NO operator registers hub-se as the home hub of SE numbers`,
		`Step 2\. A Swede asks Bank A \(Sweden\) to protect their personnummer\.`,
		`Bank N \(Norway\) has it in its\n  replica \d+ ms after Bank A sent it, verified with the Swedish hub's keys`,
		`The lift reaches Bank N through the Norwegian hub \d+ ms later`,
		`Step 3\. A fraudster applies for credit at Bank N \(Norway\)`,
		`the token is the one Bank A has`,
		`says VERIFY, with the flag's record`,
		`signed by the Swedish hub \(key [A-Za-z0-9_-]+\)`,
		`Bank N's next check, relayed to the Swedish hub, says NONE`,
		`SE: \d+ entries, signature and tree verified by Finansinspektionen`,
		`NO: \d+ entries, signature and tree verified by Finanstilsynet`,
		`Step 5\. A Norwegian living in Sweden asks Bank A to protect their fødselsnummer\.`,
		`relays it to the Norwegian hub, which holds the flag and signs its record`,
		`Bank N's check at its own hub says VERIFY`,
		`replica holds the flag too, signed by the Norwegian hub`,
		`All 6 steps behaved as described\.`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("the narration lacks %q:\n%s", want, out)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("the demo left %d files in its temporary directory", len(left))
	}
	code, _, errb = sparr(t, nil, "demo", "--hubs", "se,dk")
	wantError(t, code, errb, 2, "--hubs se,no")
}

// TestDemoHubsFailingStep leaves out the lift: Bank N's check still says
// verify, and the demo says which step failed.
func TestDemoHubsFailingStep(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	demoSkip = func(step int) bool { return step == 4 }
	demoWait = 500 * time.Millisecond
	t.Cleanup(func() { demoSkip, demoWait = nil, 10*time.Second })
	code, out, errb := sparr(t, nil, "demo", "--hubs", "se,no")
	wantError(t, code, errb, 1, "step 4 (the consumer lifts the flag at Bank A, and Bank N learns of it) did not behave as described", "Bank N forgetting the flag")
	if strings.Contains(out, "Step 5.") || strings.Contains(out, "All 6") {
		t.Errorf("the demo went on after the failed step:\n%s", out)
	}
}
