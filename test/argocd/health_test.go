// Package argocd tests the Argo CD health checks and actions in config/argocd with the Lua engine
// Argo CD itself uses (github.com/yuin/gopher-lua), on the fixtures Argo CD's own format lists in
// health_test.yaml.
package argocd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"
)

const root = "../../config/argocd/kube-secrets-manager.io"

type healthTests struct {
	Tests []struct {
		HealthStatus struct{ Status, Message string } `json:"healthStatus"`
		InputPath    string                           `json:"inputPath"`
	} `json:"tests"`
}

// toLua converts decoded YAML the way Argo CD hands objects to scripts: maps become tables, lists
// 1-based tables, numbers Lua numbers.
func toLua(L *lua.LState, v any) lua.LValue {
	switch t := v.(type) {
	case map[string]any:
		tbl := L.NewTable()
		for k, e := range t {
			tbl.RawSetString(k, toLua(L, e))
		}
		return tbl
	case []any:
		tbl := L.NewTable()
		for _, e := range t {
			tbl.Append(toLua(L, e))
		}
		return tbl
	case string:
		return lua.LString(t)
	case bool:
		return lua.LBool(t)
	case float64:
		return lua.LNumber(t)
	case int64:
		return lua.LNumber(t)
	case nil:
		return lua.LNil
	}
	return lua.LNil
}

func newVM(t *testing.T, fixture string) *lua.LState {
	t.Helper()
	data, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := yaml.Unmarshal(data, &obj); err != nil {
		t.Fatal(err)
	}
	L := lua.NewState(lua.Options{SkipOpenLibs: true})
	for _, lib := range []struct {
		name string
		fn   lua.LGFunction
	}{{lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}, {lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath}, {lua.OsLibName, lua.OpenOs}} {
		L.Push(L.NewFunction(lib.fn))
		L.Push(lua.LString(lib.name))
		L.Call(1, 0)
	}
	L.SetGlobal("obj", toLua(L, obj))
	return L
}

func TestHealthChecks(t *testing.T) {
	for _, kind := range []string{"ManagedSecret", "RotationPolicy"} {
		dir := filepath.Join(root, kind)
		raw, err := os.ReadFile(filepath.Join(dir, "health_test.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var cases healthTests
		if err := yaml.Unmarshal(raw, &cases); err != nil {
			t.Fatal(err)
		}
		if len(cases.Tests) < 3 {
			t.Fatalf("%s: too few fixtures", kind)
		}
		script, err := os.ReadFile(filepath.Join(dir, "health.lua"))
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range cases.Tests {
			t.Run(kind+"/"+tc.InputPath, func(t *testing.T) {
				L := newVM(t, filepath.Join(dir, tc.InputPath))
				defer L.Close()
				if err := L.DoString(string(script)); err != nil {
					t.Fatal(err)
				}
				hs, ok := L.Get(-1).(*lua.LTable)
				if !ok {
					t.Fatal("the script returned no table")
				}
				status, message := hs.RawGetString("status").String(), hs.RawGetString("message").String()
				if status != tc.HealthStatus.Status || message != tc.HealthStatus.Message {
					t.Fatalf("got %s %q, want %s %q", status, message, tc.HealthStatus.Status, tc.HealthStatus.Message)
				}
			})
		}
	}
}

func TestRotateAction(t *testing.T) {
	dir := filepath.Join(root, "ManagedSecret", "actions")
	fixture := filepath.Join(root, "ManagedSecret", "testdata", "healthy.yaml")
	discovery, _ := os.ReadFile(filepath.Join(dir, "discovery.lua"))
	L := newVM(t, fixture)
	defer L.Close()
	if err := L.DoString(string(discovery)); err != nil {
		t.Fatal(err)
	}
	rotate := L.Get(-1).(*lua.LTable).RawGetString("rotate").(*lua.LTable)
	if rotate.RawGetString("disabled") != lua.LTrue {
		t.Fatal("rotate must be disabled for a secret without spec.rotation")
	}
	action, _ := os.ReadFile(filepath.Join(dir, "rotate", "action.lua"))
	L2 := newVM(t, fixture)
	defer L2.Close()
	if err := L2.DoString(string(action)); err != nil {
		t.Fatal(err)
	}
	ann := L2.Get(-1).(*lua.LTable).RawGetString("metadata").(*lua.LTable).RawGetString("annotations").(*lua.LTable)
	v := ann.RawGetString("kube-secrets-manager.io/rotate-requested-at").String()
	if !strings.HasSuffix(v, "Z") || len(v) != len("2026-11-29T10:00:00Z") {
		t.Fatalf("annotation %q", v)
	}
}
