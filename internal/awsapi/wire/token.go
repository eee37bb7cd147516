package wire

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
)

// PageState is what a NextToken carries: where the next page starts, and the request it belongs
// to. A token is base64url(JSON state ‖ HMAC-SHA256(key, domain ‖ JSON state)): a client can
// read it but not forge or alter it, and a token used with other filters, sort or flags fails its
// binding check.
type PageState struct {
	// Binding is the digest of the request parameters that shape the list (PageBinding).
	Binding string `json:"b"`
	// After is the sort key of the last item returned (keyset pagination).
	After []string `json:"a,omitempty"`
	// Offset is the number of items returned so far, for callers that page by position.
	Offset int `json:"o,omitempty"`
}

type tokenPayload struct {
	Version int `json:"v"`
	PageState
}

const (
	tokenVersion = 1
	tokenDomain  = "kube-secrets-manager/awsapi/NextToken\x00"
	macLength    = sha256.Size
	// maxTokenLength is NextTokenType's maximum.
	maxTokenLength = 4096
)

func tokenMAC(key, payload []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(tokenDomain))
	m.Write(payload)
	return m.Sum(nil)
}

// EncodeToken is the NextToken for state, authenticated with key (at least 32 random bytes,
// shared by every replica that may receive the next call; tokens die with the key). It panics
// on an empty key.
func EncodeToken(key []byte, state PageState) string {
	if len(key) == 0 {
		panic("wire: EncodeToken with an empty key")
	}
	payload, err := json.Marshal(tokenPayload{Version: tokenVersion, PageState: state})
	if err != nil {
		panic("wire: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(append(payload, tokenMAC(key, payload)...))
}

func invalidNextToken() error {
	return &awserr.Error{Code: InvalidNextTokenException, Message: MsgInvalidNextToken}
}

// DecodeToken is the state of a NextToken made by EncodeToken with key; anything else (altered,
// truncated, made with another key, not base64url) → InvalidNextTokenException.
func DecodeToken(key []byte, token string) (PageState, error) {
	if len(key) == 0 || len(token) > maxTokenLength {
		return PageState{}, invalidNextToken()
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) <= macLength {
		return PageState{}, invalidNextToken()
	}
	payload, mac := raw[:len(raw)-macLength], raw[len(raw)-macLength:]
	if !hmac.Equal(mac, tokenMAC(key, payload)) {
		return PageState{}, invalidNextToken()
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	var p tokenPayload
	if err := dec.Decode(&p); err != nil || p.Version != tokenVersion {
		return PageState{}, invalidNextToken()
	}
	return p.PageState, nil
}

// DecodeTokenFor is DecodeToken for a request whose PageBinding is binding: a token issued for
// other filters, sort, flags, secret or scope → InvalidNextTokenException.
func DecodeTokenFor(key []byte, token, binding string) (PageState, error) {
	st, err := DecodeToken(key, token)
	if err != nil {
		return PageState{}, err
	}
	if !hmac.Equal([]byte(st.Binding), []byte(binding)) {
		return PageState{}, invalidNextToken()
	}
	return st, nil
}

func bindingOf(parts ...any) string {
	b, err := json.Marshal(parts)
	if err != nil {
		panic("wire: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

func filtersOrNil(f []Filter) []Filter {
	if len(f) == 0 {
		return nil
	}
	return f
}

func boolOf(b *bool) bool { return b != nil && *b }

// PageBinding digests what shapes ListSecrets' list: filters, sort (defaults applied, so an
// omitted SortBy equals "created-date") and IncludePlannedDeletion, plus the caller's scope.
// MaxResults may change from page to page, as AWS allows.
func (in ListSecretsInput) PageBinding(scope string) string {
	return bindingOf(OpListSecrets, scope, filtersOrNil(in.Filters), sortByOf(in.SortBy), sortOrderOf(in.SortOrder),
		boolOf(in.IncludePlannedDeletion))
}

// PageBinding digests what shapes BatchGetSecretValue's list: the filters and the scope.
func (in BatchGetSecretValueInput) PageBinding(scope string) string {
	return bindingOf(OpBatchGetSecretValue, scope, filtersOrNil(in.Filters))
}

// PageBinding digests what shapes ListSecretVersionIds' list: the secret, IncludeDeprecated and
// the scope.
func (in ListSecretVersionIDsInput) PageBinding(scope string) string {
	return bindingOf(OpListSecretVersionIDs, scope, in.SecretID, boolOf(in.IncludeDeprecated))
}
