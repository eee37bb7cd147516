package main

import (
	"reflect"
	"testing"
)

// The binary becomes the plugin under its plugin name, and kubectl's completion helper name
// turns its arguments into the plugin's completion request.
func TestAsPlugin(t *testing.T) {
	for _, c := range []struct {
		argv0 string
		args  []string
		want  []string
		ok    bool
	}{
		{"/usr/local/bin/kubectl-secrets_manager", []string{"get", "db"}, []string{"get", "db"}, true},
		{"kubectl_complete-secrets_manager", []string{"get", ""}, []string{"__complete", "get", ""}, true},
		{"/home/u/.krew/bin/kubectl_complete-secrets_manager", nil, []string{"__complete"}, true},
		{"/usr/bin/kube-secrets-manager", []string{"cli", "get"}, nil, false},
		{"kubectl-secrets-manager", nil, nil, false},
	} {
		got, ok := asPlugin(c.argv0, c.args)
		if ok != c.ok || !reflect.DeepEqual(got, c.want) {
			t.Errorf("asPlugin(%q, %q) = %q, %v; want %q, %v", c.argv0, c.args, got, ok, c.want, c.ok)
		}
	}
}
