package memlimit

import "testing"

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
