// Package password implements AWS Secrets Manager's GetRandomPassword: the same parameters, the
// same defaults (32 characters, at least one of each included type, no space) and the same
// character pools, drawn uniformly with crypto/rand.
package password

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/kube-secrets-manager/kube-secrets-manager/api/v1alpha1"
)

// Limits and defaults from AWS.
const (
	DefaultLength = 32
	MinLength     = 1
	MaxLength     = 4096
)

// The character pools.
const (
	Lowercase   = "abcdefghijklmnopqrstuvwxyz"
	Uppercase   = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	Digits      = "0123456789"
	Punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
)

// Errors name the problem and never a generated character.
var (
	ErrLength      = fmt.Errorf("password length must be between %d and %d", MinLength, MaxLength)
	ErrEmptyPool   = errors.New("every character is excluded; the password policy leaves nothing to choose from")
	ErrTooShort    = errors.New("password length is too short based on the required types")
	ErrExcludeSize = fmt.Errorf("excludeCharacters may hold at most %d characters", MaxLength)
)

// Policy holds GetRandomPassword's parameters. Nil pointers take AWS's defaults.
type Policy struct {
	Length                  *int
	ExcludeCharacters       string
	ExcludeNumbers          bool
	ExcludePunctuation      bool
	ExcludeUppercase        bool
	ExcludeLowercase        bool
	IncludeSpace            bool
	RequireEachIncludedType *bool
}

type plan struct {
	length   int
	all      []rune
	required [][]rune
}

func (p Policy) plan() (plan, error) {
	length := DefaultLength
	if p.Length != nil {
		length = *p.Length
	}
	if length < MinLength || length > MaxLength {
		return plan{}, ErrLength
	}
	if len([]rune(p.ExcludeCharacters)) > MaxLength {
		return plan{}, ErrExcludeSize
	}
	require := p.RequireEachIncludedType == nil || *p.RequireEachIncludedType
	keep := func(pool string) []rune {
		var out []rune
		for _, r := range pool {
			if !strings.ContainsRune(p.ExcludeCharacters, r) {
				out = append(out, r)
			}
		}
		return out
	}
	var pl plan
	pl.length = length
	for _, c := range []struct {
		excluded bool
		pool     string
	}{
		{p.ExcludeLowercase, Lowercase},
		{p.ExcludeUppercase, Uppercase},
		{p.ExcludeNumbers, Digits},
		{p.ExcludePunctuation, Punctuation},
	} {
		if c.excluded {
			continue
		}
		chars := keep(c.pool)
		if len(chars) == 0 {
			continue
		}
		pl.all = append(pl.all, chars...)
		if require {
			pl.required = append(pl.required, chars)
		}
	}
	if p.IncludeSpace {
		pl.all = append(pl.all, keep(" ")...)
	}
	if len(pl.all) == 0 {
		return plan{}, ErrEmptyPool
	}
	if length < len(pl.required) {
		return plan{}, ErrTooShort
	}
	return pl, nil
}

// Validate reports whether the policy can produce a password.
func (p Policy) Validate() error {
	_, err := p.plan()
	return err
}

// Generate returns a random password for the policy.
func (p Policy) Generate() (string, error) {
	pl, err := p.plan()
	if err != nil {
		return "", err
	}
	out := make([]rune, pl.length)
	for i := range out {
		r, err := pick(pl.all)
		if err != nil {
			return "", err
		}
		out[i] = r
	}
	// Place one character of each required type at distinct random positions, so no type sits at a
	// predictable place.
	positions, err := distinctPositions(pl.length, len(pl.required))
	if err != nil {
		return "", err
	}
	for i, pool := range pl.required {
		r, err := pick(pool)
		if err != nil {
			return "", err
		}
		out[positions[i]] = r
	}
	return string(out), nil
}

func pick(pool []rune) (rune, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(int64(len(pool))))
	if err != nil {
		return 0, err
	}
	return pool[n.Int64()], nil
}

// distinctPositions draws k distinct indexes in [0, n) with a partial Fisher-Yates shuffle.
func distinctPositions(n, k int) ([]int, error) {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	for i := 0; i < k; i++ {
		j, err := rand.Int(rand.Reader, big.NewInt(int64(n-i)))
		if err != nil {
			return nil, err
		}
		s := i + int(j.Int64())
		idx[i], idx[s] = idx[s], idx[i]
	}
	return idx[:k], nil
}

// FromSpec is the API's PasswordPolicy as a Policy (nil: AWS's defaults).
func FromSpec(p *v1alpha1.PasswordPolicy) Policy {
	if p == nil {
		return Policy{}
	}
	out := Policy{
		ExcludeCharacters:       p.ExcludeCharacters,
		ExcludeNumbers:          p.ExcludeNumbers,
		ExcludePunctuation:      p.ExcludePunctuation,
		ExcludeUppercase:        p.ExcludeUppercase,
		ExcludeLowercase:        p.ExcludeLowercase,
		IncludeSpace:            p.IncludeSpace,
		RequireEachIncludedType: p.RequireEachIncludedType,
	}
	if p.PasswordLength != nil {
		n := int(*p.PasswordLength)
		out.Length = &n
	}
	return out
}
