package awsauth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Claims is the identity a projected ServiceAccount token proved, sealed into the session token
// of the temporary credentials issued for it.
type Claims struct {
	Namespace      string
	ServiceAccount string
	UID            string // the ServiceAccount's UID
	RoleARN        string // the role assumed
	SessionName    string // RoleSessionName
	// Expiry is when the credentials stop working. It is kept to the second (truncated).
	Expiry time.Time
}

const (
	// MinKeySize is the least number of bytes of key material IssueSession and OpenSession take.
	MinKeySize = 32

	sessionPrefix  = "v1."
	sessionHKDF    = "kube-secrets-manager awsauth session-token v1"
	sessionAAD     = "kube-secrets-manager awsauth session-token v1\x00"
	accessKeyLen   = 20
	secretKeyLen   = 40
	maxSessionSize = 8192 // bytes of an encoded session token
)

// session is the sealed plaintext. Short names keep tokens small; unknown fields are ignored when
// opening, so fields can be added without a new version.
type session struct {
	AccessKeyID    string `json:"k"`
	SecretKey      string `json:"s"`
	Namespace      string `json:"ns,omitempty"`
	ServiceAccount string `json:"sa,omitempty"`
	UID            string `json:"uid,omitempty"`
	RoleARN        string `json:"role,omitempty"`
	SessionName    string `json:"sn,omitempty"`
	Expiry         int64  `json:"exp"`
}

func sessionAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) < MinKeySize {
		return nil, fmt.Errorf("awsauth: session key must be at least %d bytes", MinKeySize)
	}
	k, err := hkdf.Key(sha256.New, key, nil, sessionHKDF, 32)
	if err != nil {
		return nil, fmt.Errorf("awsauth: deriving the session key: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// IssueSession mints temporary credentials for c, stateless: any replica holding key can open
// them. accessKeyID is "ASIA" and 16 random base32 characters (20 in all, as AWS's); secretAccessKey
// is 40 random base64 characters; sessionToken is "v1." and the base64url (unpadded) of a random
// 12-byte nonce and the AES-256-GCM sealing of {accessKeyID, secretAccessKey, c} under a key derived
// from key with HKDF-SHA256 (fixed info string), the access key id bound in as associated data.
// key must be at least MinKeySize bytes and c.Expiry set.
func IssueSession(key []byte, c Claims) (accessKeyID, secretAccessKey, sessionToken string, err error) {
	aead, err := sessionAEAD(key)
	if err != nil {
		return "", "", "", err
	}
	if c.Expiry.IsZero() {
		return "", "", "", errors.New("awsauth: session claims need an Expiry")
	}
	idBytes := make([]byte, 10) // 80 bits: 16 base32 characters
	secretBytes := make([]byte, 30)
	nonce := make([]byte, aead.NonceSize())
	for _, b := range [][]byte{idBytes, secretBytes, nonce} {
		if _, err := rand.Read(b); err != nil {
			return "", "", "", err
		}
	}
	accessKeyID = "ASIA" + base32.StdEncoding.EncodeToString(idBytes)
	secretAccessKey = base64.StdEncoding.EncodeToString(secretBytes)

	plain, err := json.Marshal(session{
		AccessKeyID: accessKeyID, SecretKey: secretAccessKey,
		Namespace: c.Namespace, ServiceAccount: c.ServiceAccount, UID: c.UID,
		RoleARN: c.RoleARN, SessionName: c.SessionName, Expiry: c.Expiry.Unix(),
	})
	if err != nil {
		return "", "", "", err
	}
	sealed := aead.Seal(nonce, nonce, plain, []byte(sessionAAD+accessKeyID)) //nolint:gosec // G407: the nonce is random (crypto/rand above); Seal appends to it
	sessionToken = sessionPrefix + base64.RawURLEncoding.EncodeToString(sealed)
	if len(sessionToken) > maxSessionSize {
		return "", "", "", errors.New("awsauth: session claims are too large for a session token")
	}
	return accessKeyID, secretAccessKey, sessionToken, nil
}

// OpenSession opens a session token issued by IssueSession under key for accessKeyID, and returns
// its secret access key and claims. A token that does not open (wrong key, tampered, truncated,
// another version) or that belongs to another access key id is UnrecognizedClientException; one
// whose Expiry is at or before now is ExpiredTokenException (checked only once the token has
// opened, so a forged token never learns it is "expired"). A key shorter than MinKeySize is a
// plain error.
func OpenSession(key []byte, accessKeyID, sessionToken string, now time.Time) (secretAccessKey string, c Claims, err error) {
	aead, err := sessionAEAD(key)
	if err != nil {
		return "", Claims{}, err
	}
	if len(accessKeyID) != accessKeyLen || !strings.HasPrefix(accessKeyID, "ASIA") ||
		len(sessionToken) > maxSessionSize || !strings.HasPrefix(sessionToken, sessionPrefix) {
		return "", Claims{}, unrecognized()
	}
	sealed, err := base64.RawURLEncoding.DecodeString(sessionToken[len(sessionPrefix):])
	if err != nil || len(sealed) < aead.NonceSize()+aead.Overhead() {
		return "", Claims{}, unrecognized()
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], []byte(sessionAAD+accessKeyID))
	if err != nil {
		return "", Claims{}, unrecognized()
	}
	var s session
	if err := json.Unmarshal(plain, &s); err != nil || s.AccessKeyID != accessKeyID ||
		len(s.SecretKey) != secretKeyLen || s.Expiry == 0 {
		return "", Claims{}, unrecognized()
	}
	c = Claims{
		Namespace: s.Namespace, ServiceAccount: s.ServiceAccount, UID: s.UID,
		RoleARN: s.RoleARN, SessionName: s.SessionName, Expiry: time.Unix(s.Expiry, 0).UTC(),
	}
	if !now.Before(c.Expiry) {
		return "", Claims{}, expired()
	}
	return s.SecretKey, c, nil
}

// SessionLookup is a LookupFunc for Verify that accepts the session credentials IssueSession
// minted under key (checked against now(); time.Now when nil). A request without a session token
// goes to longTerm, or is refused as UnrecognizedClientException when longTerm is nil.
func SessionLookup(key []byte, now func() time.Time, longTerm LookupFunc) LookupFunc {
	if now == nil {
		now = time.Now
	}
	return func(accessKeyID, sessionToken string) (string, error) {
		if sessionToken == "" {
			if longTerm == nil {
				return "", unrecognized()
			}
			return longTerm(accessKeyID, "")
		}
		secret, _, err := OpenSession(key, accessKeyID, sessionToken, now())
		if err != nil {
			return "", err
		}
		return secret, nil
	}
}

// VerifySession is Verify accepting only session credentials issued under key, and returning the
// claims sealed in the session token as well. opts.Lookup is ignored.
func VerifySession(r *http.Request, body []byte, opts VerifyOptions, key []byte) (Caller, Claims, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	var claims Claims
	opts.Lookup = func(accessKeyID, sessionToken string) (string, error) {
		if sessionToken == "" {
			return "", unrecognized()
		}
		secret, c, err := OpenSession(key, accessKeyID, sessionToken, now())
		if err != nil {
			return "", err
		}
		claims = c
		return secret, nil
	}
	caller, err := Verify(r, body, opts)
	if err != nil {
		return Caller{}, Claims{}, err
	}
	return caller, claims, nil
}
