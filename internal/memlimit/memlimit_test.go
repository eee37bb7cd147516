package memlimit

import (
	"runtime/debug"
	"testing"
)

func TestSoftLimit(t *testing.T) {
	for _, tc := range []struct {
		content string
		want    int64
	}{
		{"268435456\n", 241591910},   // 256 MiB → 90 %
		{"max\n", 0},                 // cgroup v2, no limit
		{"9223372036854771712\n", 0}, // cgroup v1, no limit
		{"", 0},
		{"-1", 0},
		{"not a number", 0},
	} {
		if got := SoftLimit(tc.content); got != tc.want {
			t.Errorf("SoftLimit(%q) = %d, want %d", tc.content, got, tc.want)
		}
	}
}

func TestSetGCPercent(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	t.Setenv("GOGC", "")
	if got := SetGCPercent(); got != GCPercent {
		t.Fatalf("SetGCPercent() = %d, want %d", got, GCPercent)
	}
	if now := debug.SetGCPercent(100); now != GCPercent {
		t.Fatalf("the runtime's GOGC is %d, want %d", now, GCPercent)
	}
	t.Setenv("GOGC", "200")
	if got := SetGCPercent(); got != 0 {
		t.Fatalf("with GOGC set, SetGCPercent() = %d, want 0 (left to the environment)", got)
	}
	if now := debug.SetGCPercent(100); now != 100 {
		t.Fatalf("with GOGC set, the runtime's GOGC moved to %d", now)
	}
}
