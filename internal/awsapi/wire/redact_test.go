package wire

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestValuesNeverPrinted(t *testing.T) {
	const secret = "s3cr3t-Value"
	bin := []byte("b1nary-S3cret")
	values := []any{
		GetSecretValueOutput{Name: "prod/db", SecretString: ptr(secret)},
		GetSecretValueOutput{Name: "prod/db", SecretBinary: bin},
		&GetSecretValueOutput{Name: "prod/db", SecretString: ptr(secret)},
		SecretValueEntry{Name: "prod/db", SecretBinary: bin},
		BatchGetSecretValueOutput{SecretValues: []SecretValueEntry{{Name: "prod/db", SecretString: ptr(secret)}}},
		CreateSecretInput{Name: "prod/db", SecretString: ptr(secret)},
		CreateSecretInput{Name: "prod/db", SecretBinary: bin},
		PutSecretValueInput{SecretID: "prod/db", SecretString: ptr(secret), RotationToken: ptr(secret)},
		PutSecretValueInput{SecretID: "prod/db", SecretBinary: bin},
		&PutSecretValueInput{SecretID: "prod/db", SecretString: ptr(secret)},
		UpdateSecretInput{SecretID: "prod/db", SecretString: ptr(secret), SecretBinary: bin},
		GetRandomPasswordOutput{RandomPassword: secret},
	}
	for i, v := range values {
		for _, verb := range []string{"%v", "%+v", "%s", "%#v"} {
			out := fmt.Sprintf(verb, v)
			if strings.Contains(out, secret) || strings.Contains(out, string(bin)) {
				t.Errorf("value %d with %s prints the secret: %s", i, verb, out)
			}
			if !strings.Contains(out, redacted) {
				t.Errorf("value %d with %s: no %s in %s", i, verb, redacted, out)
			}
			if i < len(values)-1 && !strings.Contains(out, "prod/db") {
				t.Errorf("value %d with %s: the rest is not printed: %s", i, verb, out)
			}
		}
	}
	// JSON is untouched.
	b, _ := json.Marshal(GetSecretValueOutput{SecretString: ptr(secret)})
	if string(b) != `{"SecretString":"`+secret+`"}` {
		t.Errorf("JSON %s", b)
	}
	// Absent values print as absent, not as ***.
	if out := fmt.Sprint(GetSecretValueOutput{Name: "n"}); strings.Contains(out, redacted) {
		t.Errorf("absent value printed as %s", out)
	}
}
