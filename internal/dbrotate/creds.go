// Package dbrotate performs the setSecret and testSecret steps inside the rotation pod, against
// PostgreSQL and MySQL/MariaDB, following AWS's rotation templates: every setSecret first tries the
// pending credentials and does nothing if they work; passwords are bound as parameters and
// identifiers quoted by the server; the alternating strategies refuse to act unless the current
// credentials log in. Errors never include a password. TLS follows the secret's "ssl" key and the
// material's CA bundle (tls.go).
package dbrotate

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/rotation"
)

// ConnectTimeout is AWS's 5 seconds.
const ConnectTimeout = 5 * time.Second

// Creds are the fields of a database secret's JSON that rotation uses.
type Creds struct {
	Engine   string
	Host     string
	Port     int
	Username string
	Password string
	DBName   string
	// SSL: true is verify-full (TLS required, the certificate verified against the material's CA
	// bundle or else the system roots, the host name checked); false never uses TLS; nil prefers
	// TLS (verified when there is a CA bundle) and uses plaintext only when the server offers no TLS.
	SSL *bool
}

// ParseCreds reads a secret's JSON. port may be a number or a string; ssl a boolean or
// "true"/"false" (any other value counts as absent, as in AWS's templates).
func ParseCreds(data []byte, defaultPort int) (Creds, error) {
	var raw map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil || raw == nil {
		return Creds{}, errors.New("the secret value is not a JSON object")
	}
	str := func(k string) string {
		s, _ := raw[k].(string)
		return s
	}
	c := Creds{Engine: str("engine"), Host: str("host"), Username: str("username"), Password: str("password"), DBName: str("dbname"), Port: defaultPort}
	for _, k := range []string{"host", "username", "password"} {
		if str(k) == "" {
			return Creds{}, fmt.Errorf("key %q is missing from the secret's JSON", k)
		}
	}
	switch p := raw["port"].(type) {
	case json.Number:
		n, err := strconv.Atoi(p.String())
		if err != nil {
			return Creds{}, errors.New("port is not a whole number")
		}
		c.Port = n
	case string:
		if p != "" {
			n, err := strconv.Atoi(p)
			if err != nil {
				return Creds{}, errors.New("port is not a whole number")
			}
			c.Port = n
		}
	}
	switch v := raw["ssl"].(type) {
	case bool:
		c.SSL = &v
	case string:
		switch strings.ToLower(v) {
		case "true":
			t := true
			c.SSL = &t
		case "false":
			f := false
			c.SSL = &f
		}
	}
	return c, nil
}

// Material is what the operator mounted into the pod, parsed.
type Material struct {
	Current, Pending Creds
	Previous         *Creds
	Superuser        *Creds
	// CABundle is the PEM CA bundle (the material's ca.crt, from the RotationPolicy's
	// spec.tls.caBundle) that verifies the database's certificate; nil when there is none.
	CABundle []byte
}

// ErrNoLogin is AWS's message when no known credentials log in. The returned errors wrap it and
// say why the current credentials did not log in.
var ErrNoLogin = errors.New("unable to log into database with previous, current, or pending secret")

// noLogin is ErrNoLogin with the reason the current credentials failed (host, user, SQL state or
// the kind of TLS failure; never a password).
func noLogin(reason error) error {
	return fmt.Errorf("%w: %w", ErrNoLogin, reason)
}

// checkAlternate is AWS's check that the pending user is the current user's alternate.
func checkAlternate(m Material, limit int) error {
	want, err := rotation.AlternateUsername(m.Current.Username, limit)
	if err != nil {
		return err
	}
	if m.Pending.Username != want {
		return fmt.Errorf("the pending username %s is not the alternate of the current username %s", m.Pending.Username, m.Current.Username)
	}
	return nil
}

// scramIterations is PostgreSQL's default.
const scramIterations = 4096

// scramVerifier computes the SCRAM-SHA-256 verifier PostgreSQL stores for a password, as libpq's
// PQencryptPasswordConn and psql's \password do, so the password itself is never sent.
func scramVerifier(password string) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	salted, err := pbkdf2.Key(sha256.New, password, salt, scramIterations, sha256.Size)
	if err != nil {
		panic(err) // only for impossible parameters
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := mac(salted, "Server Key")
	enc := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", scramIterations, enc(salt), enc(storedKey[:]), enc(serverKey))
}
