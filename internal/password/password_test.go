package password

import (
	"errors"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

func TestGenerate(t *testing.T) {
	tests := []struct {
		name      string
		policy    Policy
		length    int
		allowed   string
		mustHave  []string
		wantError error
	}{
		{"defaults", Policy{}, 32, Lowercase + Uppercase + Digits + Punctuation, []string{Lowercase, Uppercase, Digits, Punctuation}, nil},
		{"length 4096", Policy{Length: ptr(4096)}, 4096, Lowercase + Uppercase + Digits + Punctuation, nil, nil},
		{"length 1 without required types", Policy{Length: ptr(1), RequireEachIncludedType: ptr(false)}, 1, Lowercase + Uppercase + Digits + Punctuation, nil, nil},
		{"length 4 with all four types", Policy{Length: ptr(4)}, 4, Lowercase + Uppercase + Digits + Punctuation, []string{Lowercase, Uppercase, Digits, Punctuation}, nil},
		{"length 3 is too short for four required types", Policy{Length: ptr(3)}, 0, "", nil, ErrTooShort},
		{"length 0", Policy{Length: ptr(0)}, 0, "", nil, ErrLength},
		{"length 4097", Policy{Length: ptr(4097)}, 0, "", nil, ErrLength},
		{"digits only", Policy{ExcludeLowercase: true, ExcludeUppercase: true, ExcludePunctuation: true}, 32, Digits, []string{Digits}, nil},
		{"exclude characters", Policy{ExcludeCharacters: "abcdefghijklmnopqrstuvwxyz0123456789", ExcludePunctuation: true}, 32, Uppercase, []string{Uppercase}, nil},
		{"space included", Policy{IncludeSpace: true, ExcludeLowercase: true, ExcludeUppercase: true, ExcludePunctuation: true, Length: ptr(200)}, 200, Digits + " ", []string{Digits}, nil},
		{"only space", Policy{IncludeSpace: true, ExcludeLowercase: true, ExcludeUppercase: true, ExcludePunctuation: true, ExcludeNumbers: true}, 32, " ", nil, nil},
		{"everything excluded", Policy{ExcludeLowercase: true, ExcludeUppercase: true, ExcludePunctuation: true, ExcludeNumbers: true}, 0, "", nil, ErrEmptyPool},
		{"pool emptied by excludeCharacters", Policy{ExcludeLowercase: true, ExcludeUppercase: true, ExcludePunctuation: true, ExcludeCharacters: Digits}, 0, "", nil, ErrEmptyPool},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := 0; i < 20; i++ {
				got, err := tt.policy.Generate()
				if !errors.Is(err, tt.wantError) {
					t.Fatalf("err = %v, want %v", err, tt.wantError)
				}
				if err != nil {
					return
				}
				if n := len([]rune(got)); n != tt.length {
					t.Fatalf("length %d, want %d", n, tt.length)
				}
				for _, r := range got {
					if !strings.ContainsRune(tt.allowed, r) {
						t.Fatalf("character %q not allowed", r)
					}
				}
				for _, pool := range tt.mustHave {
					if !strings.ContainsAny(got, pool) {
						t.Fatalf("missing a required character from %q", pool)
					}
				}
			}
		})
	}
}

func TestPunctuationIsAWSs32(t *testing.T) {
	if len(Punctuation) != 32 {
		t.Fatalf("punctuation pool has %d characters", len(Punctuation))
	}
}

func TestGenerateIsNotConstant(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		p, err := Policy{}.Generate()
		if err != nil {
			t.Fatal(err)
		}
		seen[p] = true
	}
	if len(seen) != 50 {
		t.Fatalf("only %d distinct passwords in 50", len(seen))
	}
}

func TestRequiredTypesAreNotAlwaysAtTheEnd(t *testing.T) {
	// With a digits-heavy pool the single required lowercase letter must not sit at a fixed place.
	positions := map[int]bool{}
	for i := 0; i < 200; i++ {
		p, _ := Policy{Length: ptr(8), ExcludeUppercase: true, ExcludePunctuation: true, ExcludeCharacters: "bcdefghijklmnopqrstuvwxyz"}.Generate()
		positions[strings.IndexRune(p, 'a')] = true
	}
	if len(positions) < 4 {
		t.Fatalf("the required character appeared at only %d positions", len(positions))
	}
}

func BenchmarkGenerateDefault(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := (Policy{}).Generate(); err != nil {
			b.Fatal(err)
		}
	}
}
