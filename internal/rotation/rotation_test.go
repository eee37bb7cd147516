package rotation

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
)

func TestAlternateUsername(t *testing.T) {
	tests := []struct {
		name, in string
		limit    int
		want     string
		wantErr  string
	}{
		{"append", "orders", 63, "orders_clone", ""},
		{"strip", "orders_clone", 63, "orders", ""},
		{"only the suffix is a name of its own", "_clone", 63, "_clone_clone", ""},
		{"exactly at the PostgreSQL limit", strings.Repeat("a", 57), 63, strings.Repeat("a", 57) + "_clone", ""},
		{"over the PostgreSQL limit", strings.Repeat("a", 58), 63, "", "64 characters, over the limit of 63"},
		{"stripping never exceeds", strings.Repeat("a", 70) + "_clone", 63, strings.Repeat("a", 70), ""},
		{"empty", "", 63, "", "no username"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AlternateUsername(tt.in, tt.limit)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v", got, err)
			}
		})
	}
}

func TestPendingValue(t *testing.T) {
	cur := `{"engine":"postgres","host":"127.0.0.1","port":5432,"username":"orders","password":"old","dbname":"orders","extra":"kept"}`
	tests := []struct {
		strategy string
		in       string
		wantUser string
		wantErr  string
	}{
		{v1alpha1.StrategyPostgreSQLSingleUser, cur, "orders", ""},
		{v1alpha1.StrategyPostgreSQLAlternatingUsers, cur, "orders_clone", ""},
		{v1alpha1.StrategyMySQLAlternatingUsers, strings.Replace(cur, `"orders",`, `"orders_clone",`, 1), "orders", ""},
		{v1alpha1.StrategyPassword, cur, "orders", ""},
		{v1alpha1.StrategyPostgreSQLSingleUser, `{"engine":"postgres","username":"u","password":"p"}`, "", `key "host" is missing`},
		{v1alpha1.StrategyMySQLSingleUser, `plain`, "", "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.strategy+tt.wantErr, func(t *testing.T) {
			got, err := PendingValue([]byte(tt.in), tt.strategy, "new<&>pw")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "new<&>pw") {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var obj map[string]any
			if err := json.Unmarshal(got, &obj); err != nil {
				t.Fatal(err)
			}
			if obj["password"] != "new<&>pw" || obj["username"] != tt.wantUser || obj["host"] != "127.0.0.1" || obj["port"] != float64(5432) {
				t.Fatalf("pending %s", got)
			}
			if tt.in == cur && obj["extra"] != "kept" {
				t.Fatal("other fields must be carried forward")
			}
		})
	}
	plain, err := PendingValue([]byte("just-a-token"), v1alpha1.StrategyPassword, "fresh")
	if err != nil || string(plain) != "fresh" {
		t.Fatalf("plain value: %s %v", plain, err)
	}
}

func TestUsernameLimit(t *testing.T) {
	if UsernameLimit(v1alpha1.StrategyPostgreSQLAlternatingUsers) != 63 || UsernameLimit(v1alpha1.StrategyMySQLAlternatingUsers) != 80 {
		t.Fatal("limits")
	}
}

// Per-engine default password policies (AWS's rotation templates) and a policy's override.
func TestPasswordPolicyDefaultsAndOverride(t *testing.T) {
	length := int32(12)
	tests := []struct {
		strategy string
		override *v1alpha1.PasswordPolicy
		length   int
		never    string
	}{
		{v1alpha1.StrategyPostgreSQLSingleUser, nil, 32, ":/@\"'\\"},
		{v1alpha1.StrategyPostgreSQLAlternatingUsers, nil, 32, ":/@\"'\\"},
		{v1alpha1.StrategyMySQLSingleUser, nil, 32, "/@\"'\\"},
		{v1alpha1.StrategyMySQLAlternatingUsers, nil, 32, "/@\"'\\"},
		{v1alpha1.StrategyPostgreSQLSingleUser, &v1alpha1.PasswordPolicy{PasswordLength: &length, ExcludePunctuation: true}, 12, "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"},
	}
	for _, tt := range tests {
		// Enough passwords that a missing exclusion would show (each has 32 characters drawn
		// from about 90).
		for i := 0; i < 300; i++ {
			pw, err := PasswordPolicy(tt.strategy, tt.override).Generate()
			if err != nil {
				t.Fatal(err)
			}
			if len(pw) != tt.length || strings.ContainsAny(pw, tt.never) {
				t.Fatalf("%s (override %v): a password of %d characters with one of %q", tt.strategy, tt.override != nil, len(pw), tt.never)
			}
		}
	}
	// Without an override, the password strategy excludes nothing: punctuation does appear.
	seen := false
	for i := 0; i < 50 && !seen; i++ {
		pw, _ := PasswordPolicy(v1alpha1.StrategyPassword, nil).Generate()
		seen = strings.ContainsAny(pw, ":/@\"'\\")
	}
	if !seen {
		t.Fatal("the password strategy never uses the characters databases exclude")
	}
}
