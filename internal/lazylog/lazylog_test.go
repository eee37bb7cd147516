package lazylog

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	uzap "go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// A line carries every pair added before it, in order, from each derived logger alone, with the
// caller's file (not this package's), names and errors; disabled levels write nothing.
func TestLinesCarryThePairsAndTheCaller(t *testing.T) {
	var out bytes.Buffer
	root := Wrap(zap.New(zap.WriteTo(&out), zap.Level(zapcore.InfoLevel), func(o *zap.Options) {
		o.ZapOpts = append(o.ZapOpts, uzap.AddCaller())
	}))
	ctl := root.WithName("managedsecret").WithValues("controller", "managedsecret")
	a := ctl.WithValues("namespace", "team-a", "name", "db")
	b := ctl.WithValues("namespace", "team-b")
	a.WithValues("reconcileID", "r1").Info("projected", "version", "v1")
	b.Error(errors.New("boom"), "failed")
	a.V(1).Info("not written")

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %d:\n%s", len(lines), out.String())
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]any{"logger": "managedsecret", "controller": "managedsecret", "namespace": "team-a", "name": "db", "reconcileID": "r1", "version": "v1", "msg": "projected"} {
		if first[k] != v {
			t.Errorf("first line: %s = %v, want %v\n%s", k, first[k], v, lines[0])
		}
	}
	if !strings.HasPrefix(first["caller"].(string), "lazylog/lazylog_test.go") {
		t.Errorf("caller %v, want this test file", first["caller"])
	}
	if second["namespace"] != "team-b" || second["name"] != nil || second["reconcileID"] != nil || second["error"] != "boom" {
		t.Errorf("second line mixes in another logger's pairs or lost its own:\n%s", lines[1])
	}
}
