// Package request is the protocol between the `kubectl secrets-manager` plugin and the operator.
// Values never travel in a custom resource: the plugin writes a short-lived request Secret (the
// value, for put) owned by the ManagedSecret; the operator answers on that Secret (the value, for
// get) and removes consumed values; the plugin reads the answer and deletes the Secret.
package request

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Operations.
const (
	OpPut         = "put"
	OpGet         = "get"
	OpUpdateStage = "update-stage"
	OpRollback    = "rollback"
)

// Keys and metadata of request Secrets.
const (
	// KeyRequest holds the JSON Request.
	KeyRequest = "request.json"
	// KeyValue holds the value of a put (consumed) or of a get's answer.
	KeyValue = "value"
	// AnnotationResult holds the JSON Result once answered.
	AnnotationResult = "kube-secrets-manager.io/result"
	// RoleRequest is the kube-secrets-manager.io/role of request Secrets.
	RoleRequest = "request"
	// AnnotationPrefix marks, on the ManagedSecret, a request that changes the secret:
	// "requests.kube-secrets-manager.io/<request Secret name>" = Confirmation(...). Writing it takes
	// permission to patch the ManagedSecret, so creating or updating Secrets alone never changes a
	// value; it names the request Secret's UID and resourceVersion, so a request changed after it
	// was confirmed is refused, and the operator removes it before acting, so a request runs once.
	AnnotationPrefix = "requests.kube-secrets-manager.io/"
)

// Confirmation is the value of a request's annotation on the ManagedSecret.
func Confirmation(op, uid, resourceVersion string) string {
	return op + "/" + uid + "/" + resourceVersion
}

// Request is what the plugin asks.
type Request struct {
	Op string `json:"op"`
	// ClientRequestToken is the new version's id (put); 32-64 characters.
	ClientRequestToken string `json:"clientRequestToken,omitempty"`
	// Stages to attach (put; default AWSCURRENT).
	Stages []string `json:"stages,omitempty"`
	// VersionID or Stage selects the version (get).
	VersionID string `json:"versionId,omitempty"`
	Stage     string `json:"stage,omitempty"`
	// Stage to move, MoveTo and RemoveFrom (update-stage).
	MoveTo     string `json:"moveToVersionId,omitempty"`
	RemoveFrom string `json:"removeFromVersionId,omitempty"`
	// Binary marks a put's value as a SecretBinary rather than a SecretString.
	Binary bool `json:"binary,omitempty"`
}

// Mutating reports whether the operation changes the secret.
func (r Request) Mutating() bool { return r.Op != OpGet }

// NeedsConfirmation reports whether the request counts only once the ManagedSecret carries its
// confirmation (patch permission on the ManagedSecret): every change, and every read of a version
// other than AWSCURRENT. Reading AWSCURRENT needs no more than reading the projected Secret does;
// an older or pending version is not projected anywhere, so reading it needs the same right as
// changing the secret. currentID is the version holding AWSCURRENT.
func (r Request) NeedsConfirmation(currentID string) bool {
	if r.Mutating() {
		return true
	}
	if r.VersionID != "" && r.VersionID != currentID {
		return true
	}
	return r.Stage != "" && r.Stage != "AWSCURRENT"
}

// ReadsOtherVersion is what the plugin checks before sending a get: whether it must confirm it.
// Without the current version's id at hand, any version id counts.
func (r Request) ReadsOtherVersion() bool {
	return r.Op == OpGet && (r.VersionID != "" || (r.Stage != "" && r.Stage != "AWSCURRENT"))
}

// MaxRequestJSON bounds request.json; a request is a few hundred bytes.
const MaxRequestJSON = 4096

// Shape problems of a request Secret that make it unanswerable: it is deleted, not answered.
var (
	ErrNotOpaque = errors.New("the request Secret is not of type Opaque")
	ErrImmutable = errors.New("the request Secret is immutable, so it cannot be answered")
	ErrTooLarge  = errors.New("the request Secret is larger than a request can be")
	ErrBadKeys   = errors.New("the request Secret holds keys other than request.json and value")
)

// CheckShape says whether a request Secret can be answered at all: an Opaque, mutable Secret
// holding only request.json (at most MaxRequestJSON bytes) and, for put, a value of at most
// valueLimit bytes. Anything else is refused without being read further.
func CheckShape(secretType string, immutable bool, data map[string][]byte, valueLimit int) error {
	switch {
	case secretType != "" && secretType != "Opaque":
		return ErrNotOpaque
	case immutable:
		return ErrImmutable
	}
	for k, v := range data {
		switch k {
		case KeyRequest:
			if len(v) > MaxRequestJSON {
				return ErrTooLarge
			}
		case KeyValue:
			if len(v) > valueLimit {
				return ErrTooLarge
			}
		default:
			return ErrBadKeys
		}
	}
	return nil
}

// Validate checks a request the way AWS validates the API call, with one-line messages.
func (r Request) Validate() error {
	switch r.Op {
	case OpPut:
		if err := ValidateToken(r.ClientRequestToken); err != nil {
			return err
		}
		for _, s := range r.Stages {
			if len(s) < 1 || len(s) > 256 {
				return errors.New("each staging label must be 1 to 256 characters")
			}
		}
		if len(r.Stages) > 20 {
			return errors.New("at most 20 staging labels may be attached to a version")
		}
	case OpGet:
		if r.VersionID != "" && (len(r.VersionID) < 32 || len(r.VersionID) > 64) {
			return errors.New("--version-id must be 32 to 64 characters")
		}
	case OpUpdateStage:
		if r.Stage == "" || len(r.Stage) > 256 {
			return errors.New("the staging label must be 1 to 256 characters")
		}
		if r.MoveTo == "" && r.RemoveFrom == "" {
			return errors.New("name a version to move the label to (--move-to-version-id), one to remove it from (--remove-from-version-id), or both")
		}
	case OpRollback:
	default:
		return fmt.Errorf("unknown operation %q", r.Op)
	}
	return nil
}

// ValidateToken enforces AWS's ClientRequestToken length.
func ValidateToken(t string) error {
	if len(t) < 32 || len(t) > 64 {
		return fmt.Errorf("--client-request-token must be 32 to 64 characters, not %d", len(t))
	}
	return nil
}

// Result is the operator's answer; Error never holds a value. Code is AWS's error type
// (internal/awserr) when the request was refused.
type Result struct {
	OK        bool     `json:"ok"`
	Code      string   `json:"code,omitempty"`
	Error     string   `json:"error,omitempty"`
	VersionID string   `json:"versionId,omitempty"`
	Stages    []string `json:"stages,omitempty"`
	// Binary says the value of a get is a SecretBinary.
	Binary bool `json:"binary,omitempty"`
}

// Encode returns the JSON form.
func (r Result) Encode() string {
	b, _ := json.Marshal(r)
	return string(b)
}

// DecodeResult reads an answer.
func DecodeResult(s string) (Result, error) {
	var r Result
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return r, errors.New("the operator's answer is not valid JSON")
	}
	return r, nil
}

// Annotations used by plugin commands that need no request Secret.
const (
	// AnnotationDeleteRequested marks a ManagedSecret for deletion after its recovery window; the
	// value is the window in days.
	AnnotationDeleteRequested = "kube-secrets-manager.io/delete-requested"
	// AnnotationRotationCancelled turns scheduled rotation off (AWS's CancelRotateSecret).
	AnnotationRotationCancelled = "kube-secrets-manager.io/rotation-cancelled"
)

// Deletion-window limits and default (AWS's).
const (
	MinRecoveryDays     = 7
	MaxRecoveryDays     = 30
	DefaultRecoveryDays = 30
)

// DeleteRequest is the delete-requested annotation's value: the window in days and a stamp that
// makes each deletion request distinct, so a delete after a restore starts a new window.
func DeleteRequest(days int, stamp string) string { return fmt.Sprintf("%d/%s", days, stamp) }

// ParseRecoveryDays reads the window from the delete-requested annotation ("N" or "N/stamp").
func ParseRecoveryDays(v string) (int, error) {
	v, _, _ = strings.Cut(v, "/")
	n, err := strconv.Atoi(v)
	if err != nil || n < MinRecoveryDays || n > MaxRecoveryDays {
		return 0, fmt.Errorf("the recovery window must be %d to %d days", MinRecoveryDays, MaxRecoveryDays)
	}
	return n, nil
}
