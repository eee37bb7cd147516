package wire

import (
	"errors"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
)

func TestValidName(t *testing.T) {
	cases := []struct {
		name string
		code string
		msg  string
	}{
		{"prod/db", "", ""},
		{"AZaz09/_+=.@-", "", ""},
		{strings.Repeat("a", 512), "", ""},
		{"", ValidationException, "1 validation error detected: Value '' at 'name' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{strings.Repeat("a", 513), ValidationException, "1 validation error detected: Value '" + strings.Repeat("a", 513) + "' at 'name' failed to satisfy constraint: Member must have length less than or equal to 512"},
		{"a b", ValidationException, MsgInvalidName},
		{"a!", ValidationException, MsgInvalidName},
		{"a:b", ValidationException, MsgInvalidName},
		{"ü", ValidationException, MsgInvalidName},
		{"arn:aws:secretsmanager:us-east-1:1:secret:x", ValidationException, MsgInvalidName},
	}
	for _, c := range cases {
		err := ValidName(c.name)
		if c.code == "" {
			if err != nil {
				t.Errorf("ValidName(%.20q) = %v", c.name, err)
			}
			continue
		}
		var e *awserr.Error
		if !errors.As(err, &e) || e.Code != c.code || e.Message != c.msg {
			t.Errorf("ValidName(%.20q) = %v, want %s %q", c.name, err, c.code, c.msg)
		}
	}
}

var derivedName = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*--[0-9a-f]{16}$`)

func TestObjectName(t *testing.T) {
	same := []string{"prod", "a", "0", "prod.db", "app-1", "a.b-c.d", "x1" + strings.Repeat("a", 251)}
	for _, n := range same {
		if got := ObjectName(n); got != n {
			t.Errorf("ObjectName(%q) = %q, want the name itself", n, got)
		}
	}
	derived := map[string]string{ // name → expected readable prefix
		"Prod":                    "prod",
		"prod/db":                 "prod-db",
		"a--b":                    "a-b",
		"-a":                      "a",
		"a-":                      "a",
		"a..b":                    "a-b",
		".a":                      "a",
		"a_b+c=d@e":               "a-b-c-d-e",
		"///":                     "secret",
		"Team/App@Prod":           "team-app-prod",
		strings.Repeat("a", 254):  strings.Repeat("a", 235),
		strings.Repeat("A", 512):  strings.Repeat("a", 235),
		strings.Repeat("a-", 200): strings.Repeat("a-", 117) + "a",
	}
	for n, prefix := range derived {
		got := ObjectName(n)
		if !derivedName.MatchString(got) || len(got) > 253 || !strings.HasPrefix(got, prefix+"--") {
			t.Errorf("ObjectName(%.30q) = %q, want %q--<16 hex>, at most 253", n, got, prefix)
		}
		if !isDNS1123Subdomain(got) {
			t.Errorf("ObjectName(%.30q) = %q is not a DNS-1123 subdomain", n, got)
		}
		if ObjectName(n) != got {
			t.Errorf("ObjectName(%q) is not deterministic", n)
		}
	}
	// Case matters, and a derived name used as an AWS name is derived again.
	if ObjectName("Prod") == ObjectName("PROD") || ObjectName("Prod") == ObjectName("prod") {
		t.Error("names differing in case must not collide")
	}
	if d := ObjectName("Prod"); ObjectName(d) == d {
		t.Errorf("the derived name %q, as an AWS name, maps to itself", d)
	}
}

func TestObjectNameNoCollisions(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabets := []string{"abcdefghijklmnopqrstuvwxyz0123456789-.", "aA-_/", "ab.-", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+=.@-"}
	seen := map[string]string{}
	add := func(name string) {
		got := ObjectName(name)
		if len(got) > 253 || got != strings.ToLower(got) || !isDNS1123Subdomain(got) {
			t.Fatalf("ObjectName(%q) = %q: not a lowercase DNS-1123 subdomain of at most 253", name, got)
		}
		if got == name && (strings.Contains(name, "--") || !isDNS1123Subdomain(name)) {
			t.Fatalf("ObjectName(%q) kept a name that must be derived", name)
		}
		if got != name && !derivedName.MatchString(got) {
			t.Fatalf("ObjectName(%q) = %q: neither the name nor a derived name", name, got)
		}
		if prev, ok := seen[got]; ok && prev != name {
			t.Fatalf("ObjectName(%q) = ObjectName(%q) = %q", name, prev, got)
		}
		seen[got] = name
	}
	for i := 0; i < 200000; i++ {
		a := alphabets[rng.IntN(len(alphabets))]
		n := 1 + rng.IntN(8)
		if rng.IntN(50) == 0 {
			n = 240 + rng.IntN(273)
		}
		b := make([]byte, n)
		for j := range b {
			b[j] = a[rng.IntN(len(a))]
		}
		add(string(b))
	}
	// Near misses: the same letters with every separator and case.
	for _, base := range []string{"prod", "db", "a"} {
		for _, sep := range []string{"/", "_", "+", "=", ".", "@", "-", "--"} {
			for _, v := range []string{base + sep + base, strings.ToUpper(base) + sep + base, base + sep} {
				add(v)
				add(ObjectName(v)) // a derived name used as an AWS name
			}
		}
	}
}

func TestParseSecretID(t *testing.T) {
	const arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbC123"
	cases := []struct {
		id   string
		want SecretRef
		code string
		msg  string
	}{
		{id: "prod/db", want: SecretRef{ID: "prod/db", Resource: "prod/db"}},
		{id: "db-AbC123", want: SecretRef{ID: "db-AbC123", Resource: "db-AbC123"}},
		{id: arn, want: SecretRef{ID: arn, ARN: true, Partition: "aws", Region: "us-east-1", Account: "123456789012",
			Resource: "prod/db-AbC123", BaseName: "prod/db", Suffix: "AbC123"}},
		{id: "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db", want: SecretRef{ID: "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db",
			ARN: true, Partition: "aws", Region: "us-east-1", Account: "123456789012", Resource: "prod/db"}},
		{id: "arn:aws:secretsmanager:us-east-1:1:secret:a-b_c12", want: SecretRef{ID: "arn:aws:secretsmanager:us-east-1:1:secret:a-b_c12",
			ARN: true, Partition: "aws", Region: "us-east-1", Account: "1", Resource: "a-b_c12"}},
		{id: "arn:kubernetes:secretsmanager:cluster:ns:secret:x-123456", want: SecretRef{ID: "arn:kubernetes:secretsmanager:cluster:ns:secret:x-123456",
			ARN: true, Partition: "kubernetes", Region: "cluster", Account: "ns", Resource: "x-123456", BaseName: "x", Suffix: "123456"}},
		{id: "arn:aws:secretsmanager:us-east-1:1:secret:-abcdef", want: SecretRef{ID: "arn:aws:secretsmanager:us-east-1:1:secret:-abcdef",
			ARN: true, Partition: "aws", Region: "us-east-1", Account: "1", Resource: "-abcdef"}},
		{id: "", code: ValidationException, msg: "1 validation error detected: Value '' at 'secretId' failed to satisfy constraint: Member must have length greater than or equal to 1"},
		{id: "a b", code: ValidationException, msg: MsgInvalidName},
		{id: "a:b", code: ValidationException, msg: MsgInvalidName},
		{id: "arn:aws:s3:::bucket", code: awserr.ResourceNotFound, msg: awserr.MsgSecretNotFound},
		{id: "arn:aws:secretsmanager:us-east-1:1:key:x", code: awserr.ResourceNotFound, msg: awserr.MsgSecretNotFound},
		{id: "arn:aws:secretsmanager:us-east-1:1:secret:", code: awserr.ResourceNotFound, msg: awserr.MsgSecretNotFound},
		{id: "arn:aws:secretsmanager:us-east-1:1:secret:a:b", code: awserr.ResourceNotFound, msg: awserr.MsgSecretNotFound},
		{id: "arn::secretsmanager:us-east-1:1:secret:a", code: awserr.ResourceNotFound, msg: awserr.MsgSecretNotFound},
		{id: "arn:aws:secretsmanager", code: awserr.ResourceNotFound, msg: awserr.MsgSecretNotFound},
	}
	for _, c := range cases {
		got, err := ParseSecretID(c.id)
		if c.code == "" {
			if err != nil || got != c.want {
				t.Errorf("ParseSecretID(%q) = %+v, %v\nwant %+v", c.id, got, err, c.want)
			}
			continue
		}
		var e *awserr.Error
		if !errors.As(err, &e) || e.Code != c.code || e.Message != c.msg || got != (SecretRef{}) {
			t.Errorf("ParseSecretID(%q) = %+v, %v; want %s %q", c.id, got, err, c.code, c.msg)
		}
	}
}

func TestResolve(t *testing.T) {
	const p = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
	secrets := map[string]string{ // name → ARN
		"prod/db":   p + "prod/db-AbC123",
		"db":        p + "db-XyZ789",
		"db-XyZ789": p + "db-XyZ789-Qrs456", // a name that looks like a full ARN's tail
		"app":       "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app-Def456",
	}
	lookup := func(name string) (string, bool) { arn, ok := secrets[name]; return arn, ok }
	cases := []struct {
		id, want string
	}{
		{"prod/db", "prod/db"},
		{"nope", ""},
		{p + "prod/db-AbC123", "prod/db"},     // full ARN
		{p + "prod/db", "prod/db"},            // partial ARN
		{p + "prod/db-AbC124", ""},            // wrong suffix
		{p + "prod/d", ""},                    // partial ARNs are whole names, not prefixes
		{p + "db-XyZ789", "db"},               // a full ARN wins over the partial ARN of "db-XyZ789"
		{p + "db-XyZ789-Qrs456", "db-XyZ789"}, // full ARN of the look-alike
		{p + "app-Def456", ""},                // another region
		{p + "app", ""},                       // partial ARN in another region
		{"arn:aws:secretsmanager:eu-west-1:123456789012:secret:app", "app"},
		{"arn:aws:secretsmanager:us-east-1:999999999999:secret:prod/db", ""}, // another account
		{"arn:aws-cn:secretsmanager:us-east-1:123456789012:secret:prod/db-AbC123", ""},
	}
	for _, c := range cases {
		ref, err := ParseSecretID(c.id)
		if err != nil {
			t.Fatalf("%s: %v", c.id, err)
		}
		got, ok := ref.Resolve(lookup)
		if ok != (c.want != "") || (ok && got != c.want) {
			t.Errorf("Resolve(%q) = %q, %v; want %q", c.id, got, ok, c.want)
		}
	}
	if (SecretRef{ID: "x"}).String() != "x" {
		t.Error("String")
	}
}
