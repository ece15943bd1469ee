package bench

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// TestBenchBorderSmall runs the border scenario at a tiny size: two
// peered hubs register each other through their operator APIs, relayed
// checks answer, and flags placed at the home hub reach both hubs' members.
func TestBenchBorderSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two peered hubs")
	}
	var progress bytes.Buffer
	rep, err := Run(context.Background(), Config{Scenarios: []string{"border"}, Duration: 200 * time.Millisecond, Concurrency: 2, Events: 5,
		Dir: t.TempDir(), Progress: &progress})
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	checkRows(t, rep, "border")
	if len(rep.Rows) != 5 {
		t.Errorf("got %d rows, want 5 (relayed check p50, p99, rate; propagation p50, p99)", len(rep.Rows))
	}
}
