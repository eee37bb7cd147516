package wire

import (
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// ListSecrets filter keys (FilterNameStringType, in the model's order).
const (
	FilterDescription   = "description"
	FilterName          = "name"
	FilterTagKey        = "tag-key"
	FilterTagValue      = "tag-value"
	FilterPrimaryRegion = "primary-region"
	FilterOwningService = "owning-service"
	FilterAll           = "all"
)

// ListSecrets sort keys and orders.
const (
	SortByCreatedDate      = "created-date"
	SortByLastAccessedDate = "last-accessed-date"
	SortByLastChangedDate  = "last-changed-date"
	SortByName             = "name"
	SortOrderAsc           = "asc"
	SortOrderDesc          = "desc"
)

// Page sizes when MaxResults is absent. AWS documents none; these are the model's maxima, so a
// client that does not paginate sees as much as one page can hold.
const (
	DefaultListSecretsMaxResults          = 100
	DefaultListSecretVersionIDsMaxResults = 100
	DefaultBatchGetSecretValueMaxResults  = 20
)

// SecretFacts is what ListSecrets' filters and sorting look at for one secret.
type SecretFacts struct {
	Name          string
	Description   string
	Tags          []Tag
	PrimaryRegion string
	OwningService string
	// Dates; the zero time is "never" (LastAccessedDate of a secret never read).
	CreatedDate, LastChangedDate, LastAccessedDate time.Time
	// PlannedDeletion marks a secret pending deletion (listed only with IncludePlannedDeletion).
	PlannedDeletion bool
}

// MatchFilters reports whether a secret passes every filter (filters are ANDed, including two
// with the same key; the values of one filter are ORed), as AWS matches them:
//
//   - name, tag-key, tag-value, primary-region, owning-service: prefix of the attribute (of any
//     tag key / tag value), case-sensitive;
//   - description: as AWS actually behaves (not as documented): the value is split into words
//     and every word must be a case-insensitive prefix of a word of the description;
//   - all: the same word match against the name, the description, each tag key and each tag
//     value (all words of the value within one of them).
//
// Words are split as AWS splits them: on the one separator kind among / - _ + = . @ that the
// text holds (text with two different kinds is one word), then before an upper-case letter that
// starts a lower-case run ("MyTest" → My, Test; "COMPANYthings" → COMPAN, Ythings) and at
// spaces. A lone separator matches nothing.
//
// A value that starts with "!" is negated: it matches a secret that the rest of the value does
// not match (so "!prod" on tag-key matches a secret with no tag key starting with "prod",
// including one without tags). Unknown keys match nothing (Decode refuses them).
func MatchFilters(filters []Filter, s SecretFacts) bool {
	for _, f := range filters {
		if f.Key == nil || !matchFilter(*f.Key, f.Values, s) {
			return false
		}
	}
	return true
}

func matchFilter(key string, values []string, s SecretFacts) bool {
	for _, v := range values {
		pattern, negated := strings.CutPrefix(v, "!")
		if matchValue(key, pattern, s) != negated {
			return true
		}
	}
	return false
}

func matchValue(key, pattern string, s SecretFacts) bool {
	prefixAny := func(attrs ...string) bool {
		for _, a := range attrs {
			if strings.HasPrefix(a, pattern) {
				return true
			}
		}
		return false
	}
	switch key {
	case FilterName:
		return prefixAny(s.Name)
	case FilterTagKey:
		for _, t := range s.Tags {
			if prefixAny(t.Key) {
				return true
			}
		}
	case FilterTagValue:
		for _, t := range s.Tags {
			if prefixAny(t.Value) {
				return true
			}
		}
	case FilterPrimaryRegion:
		return s.PrimaryRegion != "" && prefixAny(s.PrimaryRegion)
	case FilterOwningService:
		return s.OwningService != "" && prefixAny(s.OwningService)
	case FilterDescription:
		return s.Description != "" && wordsMatch(pattern, s.Description)
	case FilterAll:
		attrs := []string{s.Name}
		if s.Description != "" {
			attrs = append(attrs, s.Description)
		}
		for _, t := range s.Tags {
			attrs = append(attrs, t.Key)
		}
		for _, t := range s.Tags {
			attrs = append(attrs, t.Value)
		}
		for _, a := range attrs {
			if wordsMatch(pattern, a) {
				return true
			}
		}
	}
	return false
}

// wordsMatch: every word of pattern is a case-insensitive prefix of some word of value. A
// pattern without words matches nothing.
func wordsMatch(pattern, value string) bool {
	pw := splitWords(pattern)
	if len(pw) == 0 {
		return false
	}
	vw := splitWords(value)
	for i := range vw {
		vw[i] = strings.ToLower(vw[i])
	}
	for _, p := range pw {
		p = strings.ToLower(p)
		if !slices.ContainsFunc(vw, func(w string) bool { return strings.HasPrefix(w, p) }) {
			return false
		}
	}
	return true
}

const wordSeparators = "/-_+=.@"

// splitWords splits text into words as ListSecrets' word search does.
func splitWords(s string) []string {
	if len(s) == 1 && strings.Contains(wordSeparators, s) {
		return nil
	}
	for _, sep := range wordSeparators {
		if !strings.ContainsRune(s, sep) {
			continue
		}
		for _, other := range wordSeparators {
			if other != sep && strings.ContainsRune(s, other) {
				return []string{s}
			}
		}
		var out []string
		for _, part := range strings.Split(s, string(sep)) {
			out = append(out, splitCase(part)...)
		}
		return out
	}
	return splitCase(s)
}

var caseWord = regexp.MustCompile(`[^a-z][a-z]+`)

// splitCase cuts before every character that is not a lower-case letter and starts a run of
// lower-case letters, keeping the pieces, trimming spaces and dropping empty ones.
func splitCase(s string) []string {
	var out []string
	add := func(w string) {
		if w = strings.TrimSpace(w); w != "" {
			out = append(out, w)
		}
	}
	last := 0
	for _, m := range caseWord.FindAllStringIndex(s, -1) {
		add(s[last:m[0]])
		add(s[m[0]:m[1]])
		last = m[1]
	}
	add(s[last:])
	return out
}

// sortByOf and sortOrderOf are the request's sort, with AWS's default key (created-date) and
// this API's default order, ascending (AWS documents none).
func sortByOf(by *string) string {
	if by == nil {
		return SortByCreatedDate
	}
	return *by
}

func sortOrderOf(order *string) string {
	if order == nil {
		return SortOrderAsc
	}
	return *order
}

// timeKey orders times as strings: seconds (shifted to be positive) and nanoseconds, fixed width.
func timeKey(t time.Time) string {
	const shift = 1 << 62
	b := make([]byte, 0, 29)
	b = appendPadded(b, uint64(t.Unix()+shift), 20)
	return string(appendPadded(b, uint64(t.Nanosecond()), 9))
}

func appendPadded(b []byte, n uint64, width int) []byte {
	var d [20]byte
	for i := width - 1; i >= 0; i-- {
		d[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, d[:width]...)
}

// secretKey is a secret's position in a sort: the sort attribute, then the name (unique).
func secretKey(s SecretFacts, by string) []string {
	switch by {
	case SortByName:
		return []string{s.Name}
	case SortByLastAccessedDate:
		return []string{timeKey(s.LastAccessedDate), s.Name}
	case SortByLastChangedDate:
		return []string{timeKey(s.LastChangedDate), s.Name}
	}
	return []string{timeKey(s.CreatedDate), s.Name}
}

// SortSecrets sorts secrets for ListSecrets: by sortBy (created-date, last-accessed-date,
// last-changed-date or name; "" is created-date), ties by name, ascending unless sortOrder is
// "desc" (which reverses both). A secret never accessed sorts as the oldest.
func SortSecrets(list []SecretFacts, sortBy, sortOrder string) {
	if sortBy == "" {
		sortBy = SortByCreatedDate
	}
	desc := sortOrder == SortOrderDesc
	sort.SliceStable(list, func(i, j int) bool {
		c := slices.Compare(secretKey(list[i], sortBy), secretKey(list[j], sortBy))
		if desc {
			return c > 0
		}
		return c < 0
	})
}

// paginate cuts the page of sorted items that follows the position after (nil: the start):
// positions are keys, so a page boundary survives items added or removed between calls. It
// returns the page and, when more items follow, the key of its last item.
func paginate[T any](items []T, key func(T) []string, desc bool, after []string, max int) ([]T, []string) {
	start := 0
	if after != nil {
		start = sort.Search(len(items), func(i int) bool {
			c := slices.Compare(key(items[i]), after)
			if desc {
				c = -c
			}
			return c > 0
		})
	}
	end := min(start+max, len(items))
	page := items[start:end]
	if end < len(items) && end > start {
		return page, key(items[end-1])
	}
	return page, nil
}

func maxResults(n *int32, def int) int {
	if n == nil {
		return def
	}
	return int(*n)
}

// resume decodes a request's NextToken against its binding; nil when there is none.
func resume(key []byte, token *string, binding string) ([]string, error) {
	if token == nil {
		return nil, nil
	}
	st, err := DecodeTokenFor(key, *token, binding)
	if err != nil {
		return nil, err
	}
	if st.After == nil {
		return nil, invalidNextToken()
	}
	return st.After, nil
}

func nextToken(key []byte, binding string, last []string) *string {
	if last == nil {
		return nil
	}
	t := EncodeToken(key, PageState{Binding: binding, After: last})
	return &t
}

// ListSecretsPage is ListSecrets over all the caller's secrets: it resumes after NextToken
// (InvalidNextTokenException when forged, altered or issued for another request), drops secrets
// pending deletion unless IncludePlannedDeletion, applies the filters, sorts, and cuts a page of
// MaxResults (default DefaultListSecretsMaxResults), with the NextToken of the next page when
// one follows. scope binds tokens to the caller (e.g. its namespace). key is the token HMAC key.
func ListSecretsPage(all []SecretFacts, in ListSecretsInput, key []byte, scope string) ([]SecretFacts, *string, error) {
	binding := in.PageBinding(scope)
	after, err := resume(key, in.NextToken, binding)
	if err != nil {
		return nil, nil, err
	}
	include := in.IncludePlannedDeletion != nil && *in.IncludePlannedDeletion
	var list []SecretFacts
	for _, s := range all {
		if (!s.PlannedDeletion || include) && MatchFilters(in.Filters, s) {
			list = append(list, s)
		}
	}
	by, order := sortByOf(in.SortBy), sortOrderOf(in.SortOrder)
	SortSecrets(list, by, order)
	page, last := paginate(list, func(s SecretFacts) []string { return secretKey(s, by) }, order == SortOrderDesc,
		after, maxResults(in.MaxResults, DefaultListSecretsMaxResults))
	return page, nextToken(key, binding, last), nil
}

// BatchGetPage selects the secrets of a BatchGetSecretValue with Filters, as ListSecretsPage does
// (secrets pending deletion are left out, created-date ascending, MaxResults default
// DefaultBatchGetSecretValueMaxResults). With SecretIdList it returns nothing, the caller reading
// the secrets listed, and refuses a NextToken (none is ever issued for a list) with
// InvalidNextTokenException.
func BatchGetPage(all []SecretFacts, in BatchGetSecretValueInput, key []byte, scope string) ([]SecretFacts, *string, error) {
	if in.Filters == nil {
		if in.NextToken != nil {
			return nil, nil, invalidNextToken()
		}
		return nil, nil, nil
	}
	binding := in.PageBinding(scope)
	after, err := resume(key, in.NextToken, binding)
	if err != nil {
		return nil, nil, err
	}
	var list []SecretFacts
	for _, s := range all {
		if !s.PlannedDeletion && MatchFilters(in.Filters, s) {
			list = append(list, s)
		}
	}
	SortSecrets(list, SortByCreatedDate, SortOrderAsc)
	page, last := paginate(list, func(s SecretFacts) []string { return secretKey(s, SortByCreatedDate) }, false,
		after, maxResults(in.MaxResults, DefaultBatchGetSecretValueMaxResults))
	return page, nextToken(key, binding, last), nil
}

// VersionFacts is what ListSecretVersionIds sorts and pages for one version.
type VersionFacts struct {
	VersionID   string
	Stages      []string
	CreatedDate time.Time
}

// ListVersionsPage is ListSecretVersionIds over a secret's versions: deprecated versions (no
// labels) only with IncludeDeprecated, oldest first (CreatedDate, then VersionId), pages of
// MaxResults (default DefaultListSecretVersionIDsMaxResults), tokens as ListSecretsPage's.
func ListVersionsPage(all []VersionFacts, in ListSecretVersionIDsInput, key []byte, scope string) ([]VersionFacts, *string, error) {
	binding := in.PageBinding(scope)
	after, err := resume(key, in.NextToken, binding)
	if err != nil {
		return nil, nil, err
	}
	include := in.IncludeDeprecated != nil && *in.IncludeDeprecated
	var list []VersionFacts
	for _, v := range all {
		if len(v.Stages) > 0 || include {
			list = append(list, v)
		}
	}
	vkey := func(v VersionFacts) []string { return []string{timeKey(v.CreatedDate), v.VersionID} }
	sort.SliceStable(list, func(i, j int) bool { return slices.Compare(vkey(list[i]), vkey(list[j])) < 0 })
	page, last := paginate(list, vkey, false, after, maxResults(in.MaxResults, DefaultListSecretVersionIDsMaxResults))
	return page, nextToken(key, binding, last), nil
}
