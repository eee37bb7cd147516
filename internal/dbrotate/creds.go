// Package dbrotate performs the setSecret and testSecret steps inside the rotation pod, against
// PostgreSQL and MySQL/MariaDB, following AWS's rotation templates: every setSecret first tries the
// pending credentials and does nothing if they work; passwords are bound as parameters and
// identifiers quoted by the server; the alternating strategies refuse to act unless the current
// credentials log in. Errors never include a password.
package dbrotate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
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
	// SSL: nil tries TLS and falls back to plaintext; true requires TLS; false never uses it.
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
}

// ErrNoLogin is AWS's message when no known credentials log in.
var ErrNoLogin = errors.New("unable to log into database with previous, current, or pending secret")
