// Package rotation holds the pure decisions of AWS's four-step rotation: which version is
// pending, how the pending value is built from the current one (a new password, and for
// alternating users the other user), and the material handed to the rotation pod.
package rotation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/password"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/value"
)

// CloneSuffix marks the second user of the alternating-users strategies.
const CloneSuffix = "_clone"

// Username limits: PostgreSQL's NAMEDATALEN-1, and the largest MySQL-family limit (MariaDB, 80).
// The rotation pod checks the exact limit of the MySQL server version it talks to.
const (
	PostgreSQLUsernameLimit = 63
	MySQLUsernameLimit      = 80
)

// Files in the material Secret, mounted into the rotation pod.
const (
	FileRequest   = "request.json"
	FileCurrent   = "current.json"
	FilePending   = "pending.json"
	FilePrevious  = "previous.json"
	FileSuperuser = "superuser.json"
	// FileCABundle is the PEM CA bundle that verifies the database's TLS certificate (the
	// RotationPolicy's spec.tls.caBundle), present only when the policy sets one.
	FileCABundle = "ca.crt"
)

// Request is request.json: what the pod is asked to do.
type Request struct {
	// SecretID is the ManagedSecret's ARN-like id.
	SecretID string `json:"secretId"`
	// ClientRequestToken is the pending version's id.
	ClientRequestToken string `json:"clientRequestToken"`
	// Strategy is the RotationPolicy's strategy.
	Strategy string `json:"strategy"`
	// JobUID binds the material to one Job: a pod of another Job refuses it.
	JobUID string `json:"jobUid"`
	// Steps the pod performs, in order.
	Steps []string `json:"steps"`
}

// PodSteps are the steps the pod performs; the operator does createSecret and finishSecret.
var PodSteps = []string{"setSecret", "testSecret"}

// IsAlternating reports whether the strategy alternates two users.
func IsAlternating(strategy string) bool {
	return strategy == v1alpha1.StrategyPostgreSQLAlternatingUsers || strategy == v1alpha1.StrategyMySQLAlternatingUsers
}

// IsDatabase reports whether the strategy talks to a database.
func IsDatabase(strategy string) bool {
	return strategy != v1alpha1.StrategyPassword && strategy != v1alpha1.StrategyCustom
}

// UsernameLimit is the longest username the operator accepts for the strategy.
func UsernameLimit(strategy string) int {
	if strings.HasPrefix(strategy, "postgresql") {
		return PostgreSQLUsernameLimit
	}
	return MySQLUsernameLimit
}

// AlternateUsername is AWS's alternation: strip a trailing _clone, or append one.
func AlternateUsername(name string, limit int) (string, error) {
	if name == "" {
		return "", errors.New("the current value has no username")
	}
	if strings.HasSuffix(name, CloneSuffix) && len(name) > len(CloneSuffix) {
		return strings.TrimSuffix(name, CloneSuffix), nil
	}
	alt := name + CloneSuffix
	if len(alt) > limit {
		return "", fmt.Errorf("the alternate username would be %d characters, over the limit of %d; use a username of at most %d characters", len(alt), limit, limit-len(CloneSuffix))
	}
	return alt, nil
}

// PendingValue builds the pending value from the current one: every field copied, the password
// replaced, and for alternating users the username switched. Database strategies need a JSON
// object with engine, host, username and password.
func PendingValue(current []byte, strategy, password string) ([]byte, error) {
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(current))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil || obj == nil {
		if IsDatabase(strategy) {
			return nil, errors.New("the current value is not a JSON object; database strategies need engine, host, username and password")
		}
		// A plain value: the new value is the password alone.
		return []byte(password), nil
	}
	if IsDatabase(strategy) {
		for _, k := range []string{"engine", "host", "username", "password"} {
			if s, ok := obj[k].(string); !ok || s == "" {
				return nil, fmt.Errorf("key %q is missing from the secret's JSON (or is not a string)", k)
			}
		}
	}
	if IsAlternating(strategy) {
		alt, err := AlternateUsername(obj["username"].(string), UsernameLimit(strategy))
		if err != nil {
			return nil, err
		}
		obj["username"] = alt
	}
	obj["password"] = password
	return value.Marshal(obj)
}

// PasswordPolicy is the policy for a strategy's new passwords: the RotationPolicy's own, or AWS's
// template defaults, which leave out the characters that break connection strings (PostgreSQL
// :/@"'\ and MySQL /@"'\).
func PasswordPolicy(strategy string, override *v1alpha1.PasswordPolicy) password.Policy {
	if override != nil {
		return password.FromSpec(override)
	}
	switch {
	case strings.HasPrefix(strategy, "postgresql"):
		return password.Policy{ExcludeCharacters: PostgreSQLExcluded}
	case strings.HasPrefix(strategy, "mysql"):
		return password.Policy{ExcludeCharacters: MySQLExcluded}
	}
	return password.Policy{}
}

// The characters AWS's rotation templates exclude by default.
const (
	PostgreSQLExcluded = ":/@\"'\\"
	MySQLExcluded      = "/@\"'\\"
)
