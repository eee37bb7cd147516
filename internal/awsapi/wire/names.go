package wire

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
)

// Name limits of the model (NameType) and of Kubernetes object names (DNS-1123 subdomains).
const (
	MaxNameLength       = 512
	MaxObjectNameLength = 253
)

func validNameChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("/_+=.@-", c) >= 0
}

func validNameChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if !validNameChar(s[i]) {
			return false
		}
	}
	return true
}

// ValidName checks a new secret's name as AWS does: 1-512 characters (ValidationException in the
// shape form, at 'name') of [A-Za-z0-9/_+=.@-] (ValidationException MsgInvalidName). Names are
// case-sensitive.
func ValidName(name string) error {
	d := &decoder{}
	d.checkLength("name", name, length(name, false), constraints{minLen: ptr(int64(1)), maxLen: ptr(int64(MaxNameLength))})
	if err := d.result(); err != nil {
		return err
	}
	if !validNameChars(name) {
		return invalidName()
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// objectNameMarker separates the readable prefix from the digest in a derived object name. Only
// derived names contain it: a name that contains it is never used as it is, so a derived name
// never equals another secret's name used as it is.
const objectNameMarker = "--"

// digestLength is the number of hex digits of SHA-256 kept in a derived name (64 bits).
const digestLength = 16

// ObjectName is the Kubernetes object name of the secret with the given AWS name:
//
//   - the name itself when it is a lowercase DNS-1123 subdomain of at most 253 characters
//     (lowercase alphanumerics, '-' and '.', labels starting and ending alphanumeric) that does
//     not contain "--";
//   - otherwise a derived name: prefix + "--" + the first 16 hex digits of SHA-256(AWS name),
//     where prefix is the name lowercased, every run of characters other than [a-z0-9] replaced
//     by one '-', trimmed of '-' at both ends, cut to fit 253 characters ("secret" if empty).
//
// So "prod.db" and "app-1" are their own object names, while "Prod/DB" becomes
// "prod-db--<16 hex>" and "prod" and "Prod" never collide. Derived names always contain "--"
// and names used as they are never do, so the two sets are disjoint; two derived names collide
// only if SHA-256 prefixes of 64 bits do. The mapping is one-way: the caller keeps the exact AWS
// name in an annotation.
func ObjectName(awsName string) string {
	if !strings.Contains(awsName, objectNameMarker) && isDNS1123Subdomain(awsName) {
		return awsName
	}
	sum := sha256.Sum256([]byte(awsName))
	digest := hex.EncodeToString(sum[:])[:digestLength]
	var b strings.Builder
	dash := false
	for i := 0; i < len(awsName); i++ {
		c := awsName[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteByte(c)
			continue
		}
		dash = true
	}
	prefix := b.String()
	if max := MaxObjectNameLength - len(objectNameMarker) - digestLength; len(prefix) > max {
		prefix = strings.TrimRight(prefix[:max], "-")
	}
	if prefix == "" {
		prefix = "secret"
	}
	return prefix + objectNameMarker + digest
}

// isDNS1123Subdomain: at most 253 characters, dot-separated labels of [a-z0-9-] that start and
// end with [a-z0-9].
func isDNS1123Subdomain(s string) bool {
	if len(s) == 0 || len(s) > MaxObjectNameLength {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
				return false
			}
		}
	}
	return true
}

// SecretRef is a parsed SecretId: a name, or an ARN (full or partial) whose partition, region
// and account the caller compares with its own, through Resolve.
type SecretRef struct {
	// ID is the SecretId as given.
	ID string
	// ARN reports whether ID is an ARN (it starts with "arn:").
	ARN                        bool
	Partition, Region, Account string
	// Resource is the text after ":secret:" of an ARN (the name, if ID is a partial ARN), or ID.
	Resource string
	// BaseName and Suffix are Resource split as a full ARN's "<name>-<6 characters>", when it
	// has that form ("" otherwise).
	BaseName, Suffix string
}

// ParseSecretID parses a SecretId (§1.2). A non-ARN with a character outside
// [A-Za-z0-9/_+=.@-] → ValidationException MsgInvalidName (length violations → the shape form);
// an ARN that is not a secretsmanager secret ARN → ResourceNotFoundException, since no secret
// can have it.
func ParseSecretID(id string) (SecretRef, error) {
	d := &decoder{}
	d.checkString("secretId", id, constraints{minLen: ptr(int64(1)), maxLen: ptr(int64(2048)), id: true})
	if err := d.result(); err != nil {
		return SecretRef{}, err
	}
	if !strings.HasPrefix(id, "arn:") {
		return SecretRef{ID: id, Resource: id}, nil
	}
	parts := strings.SplitN(id, ":", 7)
	if len(parts) != 7 || parts[1] == "" || parts[2] != "secretsmanager" || parts[5] != "secret" ||
		parts[6] == "" || !validNameChars(parts[6]) {
		return SecretRef{}, &awserr.Error{Code: awserr.ResourceNotFound, Message: awserr.MsgSecretNotFound}
	}
	r := SecretRef{ID: id, ARN: true, Partition: parts[1], Region: parts[3], Account: parts[4], Resource: parts[6]}
	if n := len(r.Resource); n > 7 && r.Resource[n-7] == '-' && isAlnum(r.Resource[n-6:]) {
		r.BaseName, r.Suffix = r.Resource[:n-7], r.Resource[n-6:]
	}
	return r, nil
}

func isAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Resolve finds the secret r identifies, in AWS's order: for an ARN, the secret named BaseName
// whose ARN is exactly ID (a full ARN), then the secret named Resource whose ARN is ID plus "-"
// and six characters (a partial ARN); for a name, the secret of that name. lookup returns the
// ARN of the secret with a name (in the caller's partition, region and account), and whether
// there is one. It returns the name of the secret found.
func (r SecretRef) Resolve(lookup func(name string) (arn string, ok bool)) (string, bool) {
	if !r.ARN {
		_, ok := lookup(r.Resource)
		return r.Resource, ok
	}
	if r.BaseName != "" {
		if arn, ok := lookup(r.BaseName); ok && arn == r.ID {
			return r.BaseName, true
		}
	}
	if arn, ok := lookup(r.Resource); ok && len(arn) == len(r.ID)+7 && strings.HasPrefix(arn, r.ID+"-") && isAlnum(arn[len(r.ID)+1:]) {
		return r.Resource, true
	}
	return "", false
}

// String is the SecretId.
func (r SecretRef) String() string { return r.ID }
