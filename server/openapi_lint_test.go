package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// lintDir holds the pinned Redocly CLI (package.json, package-lock.json)
// and its configuration; `npm ci` there installs it, as .ci/run does.
const lintDir = "../docs/lint"

// A lintReport is what `redocly lint --format=json` prints.
type lintReport struct {
	Totals struct {
		Errors   int `json:"errors"`
		Warnings int `json:"warnings"`
	} `json:"totals"`
	Version  string `json:"version"`
	Problems []struct {
		RuleID   string `json:"ruleId"`
		Severity string `json:"severity"`
		Message  string `json:"message"`
		Location []struct {
			Pointer string `json:"pointer"`
			Start   struct {
				Line int `json:"line"`
			} `json:"start"`
		} `json:"location"`
	} `json:"problems"`
}

// TestOpenAPILint lints docs/openapi.yaml with the pinned Redocly CLI and
// its recommended rules, as docs/lint/redocly.yaml adjusts them: any error
// or warning fails. Without the CLI installed it skips, unless
// SPARR_REQUIRE_LINT=1 (as in CI) makes that a failure.
func TestOpenAPILint(t *testing.T) {
	bin, err := filepath.Abs(filepath.Join(lintDir, "node_modules", ".bin", "redocly"))
	if err != nil {
		t.Fatal(err)
	}
	missing := ""
	if _, err := os.Stat(bin); err != nil {
		missing = fmt.Sprintf("the pinned Redocly CLI is not installed (%s); run `npm ci` in docs/lint", bin)
	} else if _, err := exec.LookPath("node"); err != nil {
		missing = "node is not on PATH; the Redocly CLI needs Node.js 20.19 or later in the 20 line, or 22.12 or later"
	}
	if missing != "" {
		if os.Getenv("SPARR_REQUIRE_LINT") == "1" {
			t.Fatalf("SPARR_REQUIRE_LINT=1 but %s", missing)
		}
		t.Skipf("skipping the OpenAPI lint: %s (set SPARR_REQUIRE_LINT=1 to make this a failure)", missing)
	}
	var pkg struct {
		DevDependencies map[string]string `json:"devDependencies"`
	}
	b, err := os.ReadFile(filepath.Join(lintDir, "package.json"))
	if err == nil {
		err = json.Unmarshal(b, &pkg)
	}
	if err != nil {
		t.Fatalf("read docs/lint/package.json: %v", err)
	}
	pinned := pkg.DevDependencies["@redocly/cli"]

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "lint", openAPIFile, "--config", filepath.Join(lintDir, "redocly.yaml"), "--format=json")
	// No telemetry and no update check: the CLI is asked nothing but to lint.
	cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true", "NO_UPDATE_NOTIFIER=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var report lintReport
	if jerr := json.Unmarshal(out, &report); jerr != nil {
		t.Fatalf("redocly lint: %v, and its output is not a report (%v):\n%s\n%s", err, jerr, out, stderr.String())
	}
	if report.Version != pinned {
		t.Errorf("got Redocly CLI %s, want the pinned %s: run `npm ci` in docs/lint", report.Version, pinned)
	}
	for _, p := range report.Problems {
		where := ""
		if len(p.Location) > 0 {
			where = fmt.Sprintf("%s:%d %s: ", filepath.Base(openAPIFile), p.Location[0].Start.Line, p.Location[0].Pointer)
		}
		t.Errorf("%s%s (%s, %s)", where, p.Message, p.RuleID, p.Severity)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && report.Totals.Errors == 0 {
		t.Errorf("redocly lint exited %d with no error reported: %s", exit.ExitCode(), stderr.String())
	}
	if report.Totals.Errors+report.Totals.Warnings != len(report.Problems) {
		t.Errorf("got totals %+v for %d problems listed", report.Totals, len(report.Problems))
	}
}

// TestOpenAPIComponentsUsed stands in for Redocly's no-unused-components,
// which docs/lint/redocly.yaml turns off: a component is used when the
// document refers to it anywhere, the x-sparr- extensions included.
func TestOpenAPIComponentsUsed(t *testing.T) {
	doc := openAPI(t)
	b, err := os.ReadFile(filepath.FromSlash(openAPIFile))
	if err != nil {
		t.Fatal(err)
	}
	refs := map[string]bool{}
	for _, m := range regexp.MustCompile(`"#/components/([A-Za-z]+/[A-Za-z0-9_.-]+)"`).FindAllStringSubmatch(string(b), -1) {
		refs[m[1]] = true
	}
	var names []string
	for name := range doc.Components.Schemas {
		names = append(names, "schemas/"+name)
	}
	for name := range doc.Components.Responses {
		names = append(names, "responses/"+name)
	}
	for name := range doc.Components.Parameters {
		names = append(names, "parameters/"+name)
	}
	for name := range doc.Components.Headers {
		names = append(names, "headers/"+name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !refs[name] {
			t.Errorf("got components/%s that nothing refers to, want it used or removed", name)
		}
	}
}
