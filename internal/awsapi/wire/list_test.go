package wire

import (
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
)

func TestSplitWords(t *testing.T) {
	cases := map[string][]string{
		// moto's table, and the cases its AWS-verified tests establish.
		"test":                 {"test"},
		"my test":              {"my", "test"},
		"Mytest":               {"Mytest"},
		"MyTest":               {"My", "Test"},
		"MyTestPhrase":         {"My", "Test", "Phrase"},
		"myTest":               {"my", "Test"},
		"my/test":              {"my", "test"},
		"prod/AppBeta/x1":      {"prod", "App", "Beta", "x1"},
		"prod_AppBeta_x1":      {"prod", "App", "Beta", "x1"},
		"prod+AppBeta+x1":      {"prod", "App", "Beta", "x1"},
		"prod=AppBeta=x1":      {"prod", "App", "Beta", "x1"},
		"prod.AppBeta.x1":      {"prod", "App", "Beta", "x1"},
		"prod@AppBeta@x1":      {"prod", "App", "Beta", "x1"},
		"prod-AppBeta-x1":      {"prod", "App", "Beta", "x1"},
		"prod-AppBeta/x1":      {"prod-AppBeta/x1"}, // two separator kinds: one word
		"uat/COMPANY/abc":      {"uat", "COMPANY", "abc"},
		"uat/COMPANYthings/ab": {"uat", "COMPAN", "Ythings", "ab"},
		"one and two":          {"one", "and", "two"},
		"DescTwo":              {"Desc", "Two"},
		"+":                    nil,
		"/":                    nil,
		"":                     nil,
		"d t":                  {"d", "t"},
		"3f9a1b":               {"3f", "9a", "1b"},
	}
	for in, want := range cases {
		if got := splitWords(in); !reflect.DeepEqual(got, want) {
			t.Errorf("splitWords(%q) = %q, want %q", in, got, want)
		}
	}
}

func filter(key string, values ...string) Filter { return Filter{Key: &key, Values: values} }

func names(list []SecretFacts) []string {
	out := []string{}
	for _, s := range list {
		out = append(out, s.Name)
	}
	return out
}

func matching(secrets []SecretFacts, filters ...Filter) []string {
	var out []SecretFacts
	for _, s := range secrets {
		if MatchFilters(filters, s) {
			out = append(out, s)
		}
	}
	return names(out)
}

// The scenarios of moto's AWS-verified ListSecrets tests.
func TestMatchFiltersAll(t *testing.T) {
	secrets := []SecretFacts{
		{Name: "SecretOneab12"},
		{Name: "SecretTwoab12", Description: "DescTwo"},
		{Name: "Thirdsecretab12"},
		{Name: "SecretFTagab12", Tags: []Tag{{"1", "foo"}}},
		{Name: "SecretFValueab12", Tags: []Tag{{"foo", "v"}}},
		{Name: "noneab12"},
	}
	cases := []struct {
		value string
		want  []string
	}{
		{"SecretOne", []string{"SecretOneab12"}},
		{"foo", []string{"SecretFTagab12", "SecretFValueab12"}},
		{"Secret", []string{"SecretOneab12", "SecretTwoab12", "SecretFTagab12", "SecretFValueab12"}},
		{"secret", []string{"SecretOneab12", "SecretTwoab12", "SecretFTagab12", "SecretFValueab12"}},
		{"ret", []string{}},
		{"sec", []string{"SecretOneab12", "SecretTwoab12", "SecretFTagab12", "SecretFValueab12"}},
		{"SomeSecret", []string{}},
		{"d", []string{"SecretTwoab12"}},
		{"d t", []string{"SecretTwoab12"}},
		{"t", []string{"SecretTwoab12", "Thirdsecretab12", "SecretFTagab12"}},
	}
	for _, c := range cases {
		if got := matching(secrets, filter(FilterAll, c.value)); !reflect.DeepEqual(got, c.want) {
			t.Errorf("all %q = %q, want %q", c.value, got, c.want)
		}
	}

	special := []SecretFacts{
		{Name: "prod/AppBeta/ab12"}, {Name: "prod_AppBeta_ab12"}, {Name: "prod+AppBeta+ab12"}, {Name: "prod=AppBeta=ab12"},
		{Name: "prod.AppBeta.ab12"}, {Name: "prod@AppBeta@ab12"}, {Name: "prod-AppBeta-ab12"}, {Name: "prod-AppBeta/ab12"},
		{Name: "uat/COMPANY/ab12"}, {Name: "uat/COMPANYthings/ab12"},
	}
	seven := names(special[:7])
	cases = []struct {
		value string
		want  []string
	}{
		{"AppBeta", seven},
		{"Beta", seven},
		{"+", []string{}},
		{"ab12", append(slices.Clone(seven), "uat/COMPANY/ab12", "uat/COMPANYthings/ab12")},
		{"company", []string{"uat/COMPANY/ab12"}},
		{"things", []string{}},
		{"Ythings", []string{"uat/COMPANYthings/ab12"}},
		{"N", []string{}},
		{"pany", []string{}},
	}
	for _, c := range cases {
		if got := matching(special, filter(FilterAll, c.value)); !reflect.DeepEqual(got, c.want) {
			t.Errorf("all %q = %q, want %q", c.value, got, c.want)
		}
	}
	// Several values of one filter are ORed ("prod-AppBeta/ab12" is one word, starting with prod).
	if got := matching(special, filter(FilterAll, "AppBeta", "prod")); !reflect.DeepEqual(got, names(special[:8])) {
		t.Errorf("all AppBeta|prod = %q", got)
	}
}

func TestMatchFiltersDescription(t *testing.T) {
	secrets := []SecretFacts{
		{Name: "foo", Description: "one two"},
		{Name: "bar", Description: "one and two"},
		{Name: "baz", Description: "one"},
		{Name: "qux", Description: "two"},
		{Name: "none", Description: "unrelated"},
		{Name: "empty"},
	}
	cases := []struct {
		filters []Filter
		want    []string
	}{
		{[]Filter{filter(FilterDescription, "one two")}, []string{"foo", "bar"}},
		{[]Filter{filter(FilterDescription, "o t")}, []string{"foo", "bar"}},
		{[]Filter{filter(FilterDescription, "t")}, []string{"foo", "bar", "qux"}},
		{[]Filter{filter(FilterDescription, "ONE")}, []string{"foo", "bar", "baz"}},
		{[]Filter{filter(FilterDescription, "ne")}, []string{}},
		// Two filters with the same key are ANDed.
		{[]Filter{filter(FilterDescription, "one"), filter(FilterDescription, "two")}, []string{"foo", "bar"}},
		// Negation.
		{[]Filter{filter(FilterDescription, "one", "!two")}, []string{"foo", "bar", "baz", "none", "empty"}},
		{[]Filter{filter(FilterDescription, "!o")}, []string{"qux", "none", "empty"}},
		{[]Filter{filter(FilterDescription, "!one two")}, []string{"baz", "qux", "none", "empty"}},
	}
	for _, c := range cases {
		if got := matching(secrets, c.filters...); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%v = %q, want %q", c.filters, got, c.want)
		}
	}
}

func TestMatchFiltersPrefixKeys(t *testing.T) {
	secrets := []SecretFacts{
		{Name: "Prod/db", Tags: []Tag{{"Env", "prod"}, {"team", "Core"}}, PrimaryRegion: "us-east-1"},
		{Name: "prod/cache", Tags: []Tag{{"env", "Prod"}}, OwningService: "rds"},
		{Name: "dev/db", Tags: []Tag{{"envelope", "x"}}, PrimaryRegion: "eu-west-1", OwningService: "appflow"},
		{Name: "untagged"},
	}
	cases := []struct {
		filters []Filter
		want    []string
	}{
		{[]Filter{filter(FilterName, "Prod")}, []string{"Prod/db"}},
		{[]Filter{filter(FilterName, "prod")}, []string{"prod/cache"}},
		{[]Filter{filter(FilterName, "prod", "Prod")}, []string{"Prod/db", "prod/cache"}},
		{[]Filter{filter(FilterName, "db")}, []string{}}, // prefix, not substring
		{[]Filter{filter(FilterName, "")}, []string{"Prod/db", "prod/cache", "dev/db", "untagged"}},
		{[]Filter{filter(FilterName, "!prod")}, []string{"Prod/db", "dev/db", "untagged"}},
		{[]Filter{filter(FilterTagKey, "env")}, []string{"prod/cache", "dev/db"}},
		{[]Filter{filter(FilterTagKey, "Env")}, []string{"Prod/db"}},
		{[]Filter{filter(FilterTagKey, "!env")}, []string{"Prod/db", "untagged"}}, // no tag key starts with env
		{[]Filter{filter(FilterTagValue, "prod")}, []string{"Prod/db"}},
		{[]Filter{filter(FilterTagValue, "Prod", "Co")}, []string{"Prod/db", "prod/cache"}},
		{[]Filter{filter(FilterTagKey, "env"), filter(FilterTagValue, "Prod")}, []string{"prod/cache"}},
		{[]Filter{filter(FilterPrimaryRegion, "us-")}, []string{"Prod/db"}},
		{[]Filter{filter(FilterPrimaryRegion, "US-")}, []string{}},
		{[]Filter{filter(FilterPrimaryRegion, "")}, []string{"Prod/db", "dev/db"}}, // needs a primary region
		{[]Filter{filter(FilterOwningService, "rd")}, []string{"prod/cache"}},
		{[]Filter{filter(FilterOwningService, "!rds")}, []string{"Prod/db", "dev/db", "untagged"}},
		{[]Filter{filter("size", "1")}, []string{}},
		{nil, []string{"Prod/db", "prod/cache", "dev/db", "untagged"}},
		{[]Filter{{Values: []string{"x"}}}, []string{}},
	}
	for _, c := range cases {
		if got := matching(secrets, c.filters...); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%v = %q, want %q", c.filters, got, c.want)
		}
	}
}

func day(n int) time.Time { return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, n) }

func TestSortSecrets(t *testing.T) {
	base := []SecretFacts{
		{Name: "c", CreatedDate: day(1), LastChangedDate: day(9), LastAccessedDate: day(3)},
		{Name: "a", CreatedDate: day(3), LastChangedDate: day(4)},
		{Name: "b", CreatedDate: day(2), LastChangedDate: day(5), LastAccessedDate: day(1)},
		{Name: "d", CreatedDate: day(2), LastChangedDate: day(4), LastAccessedDate: day(3)},
	}
	cases := []struct {
		by, order string
		want      []string
	}{
		{"", "", []string{"c", "b", "d", "a"}},
		{SortByCreatedDate, SortOrderAsc, []string{"c", "b", "d", "a"}},
		{SortByCreatedDate, SortOrderDesc, []string{"a", "d", "b", "c"}},
		{SortByName, "", []string{"a", "b", "c", "d"}},
		{SortByName, SortOrderDesc, []string{"d", "c", "b", "a"}},
		{SortByLastChangedDate, SortOrderAsc, []string{"a", "d", "b", "c"}},
		{SortByLastAccessedDate, SortOrderAsc, []string{"a", "b", "c", "d"}}, // never accessed first
		{SortByLastAccessedDate, SortOrderDesc, []string{"d", "c", "b", "a"}},
	}
	for _, c := range cases {
		list := slices.Clone(base)
		SortSecrets(list, c.by, c.order)
		if got := names(list); !reflect.DeepEqual(got, c.want) {
			t.Errorf("SortSecrets(%q, %q) = %q, want %q", c.by, c.order, got, c.want)
		}
	}
}

var tokenKey = []byte("0123456789abcdef0123456789abcdef")

func TestTokens(t *testing.T) {
	st := PageState{Binding: "b1", After: []string{"k1", "prod/db"}, Offset: 40}
	tok := EncodeToken(tokenKey, st)
	if strings.ContainsAny(tok, "+/=") {
		t.Errorf("token %q is not unpadded base64url", tok)
	}
	got, err := DecodeToken(tokenKey, tok)
	if err != nil || !reflect.DeepEqual(got, st) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if _, err := DecodeTokenFor(tokenKey, tok, "b1"); err != nil {
		t.Fatalf("DecodeTokenFor, same binding: %v", err)
	}
	bad := []struct {
		name, tok string
		key       []byte
		binding   string
	}{
		{"other binding", tok, tokenKey, "b2"},
		{"other key", tok, []byte("another key of thirty-two bytes!"), "b1"},
		{"empty key", tok, nil, "b1"},
		{"truncated", tok[:len(tok)-3], tokenKey, "b1"},
		{"extended", tok + "AA", tokenKey, "b1"},
		{"garbage", "not a token", tokenKey, "b1"},
		{"empty", "", tokenKey, "b1"},
		{"an offset", "40", tokenKey, "b1"},
		{"padded", tok + "=", tokenKey, "b1"},
		{"too long", strings.Repeat("A", 4097), tokenKey, "b1"},
	}
	for i := 0; i < len(tok); i++ { // every single-character change
		c := byte('A')
		if tok[i] == 'A' {
			c = 'B'
		}
		bad = append(bad, struct {
			name, tok string
			key       []byte
			binding   string
		}{fmt.Sprintf("char %d", i), tok[:i] + string(c) + tok[i+1:], tokenKey, "b1"})
	}
	for _, b := range bad {
		_, err := DecodeTokenFor(b.key, b.tok, b.binding)
		var e *awserr.Error
		if !errors.As(err, &e) || e.Code != InvalidNextTokenException || e.Message != MsgInvalidNextToken {
			t.Errorf("%s: %v, want InvalidNextTokenException", b.name, err)
		}
	}
	// Validly signed payloads of another version, or with unknown members, are refused too.
	for _, payload := range []string{`{"v":2,"b":"b1","a":["x"]}`, `{"v":1,"b":"b1","a":["x"],"z":1}`, `[]`} {
		forged := base64.RawURLEncoding.EncodeToString(append([]byte(payload), tokenMAC(tokenKey, []byte(payload))...))
		if _, err := DecodeToken(tokenKey, forged); awserr.CodeOf(err) != InvalidNextTokenException {
			t.Errorf("payload %s: %v", payload, err)
		}
	}
	good := `{"v":1,"b":"b1","a":["x"]}`
	if _, err := DecodeToken(tokenKey, base64.RawURLEncoding.EncodeToString(append([]byte(good), tokenMAC(tokenKey, []byte(good))...))); err != nil {
		t.Errorf("the same construction with version 1: %v", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("EncodeToken with an empty key must panic")
			}
		}()
		EncodeToken(nil, st)
	}()
}

func TestPageBinding(t *testing.T) {
	desc, created := SortOrderDesc, SortByCreatedDate
	yes, no := true, false
	a := ListSecretsInput{Filters: []Filter{filter(FilterName, "a")}}
	same := []ListSecretsInput{
		{Filters: []Filter{filter(FilterName, "a")}, SortBy: &created},
		{Filters: []Filter{filter(FilterName, "a")}, IncludePlannedDeletion: &no, MaxResults: ptr(int32(5))},
	}
	for _, s := range same {
		if s.PageBinding("ns") != a.PageBinding("ns") {
			t.Errorf("%+v binds differently from %+v", s, a)
		}
	}
	other := []ListSecretsInput{
		{Filters: []Filter{filter(FilterName, "b")}},
		{Filters: []Filter{filter(FilterTagKey, "a")}},
		{Filters: []Filter{filter(FilterName, "a", "b")}},
		{Filters: []Filter{filter(FilterName, "a")}, SortOrder: &desc},
		{Filters: []Filter{filter(FilterName, "a")}, IncludePlannedDeletion: &yes},
		{},
	}
	for _, o := range other {
		if o.PageBinding("ns") == a.PageBinding("ns") {
			t.Errorf("%+v binds like %+v", o, a)
		}
	}
	if a.PageBinding("ns") == a.PageBinding("ns2") {
		t.Error("the scope must bind")
	}
	if (ListSecretsInput{Filters: []Filter{}}).PageBinding("") != (ListSecretsInput{}).PageBinding("") {
		t.Error("no filters and an empty list are the same request")
	}
	v := ListSecretVersionIDsInput{SecretID: "a"}
	if v.PageBinding("") == (ListSecretVersionIDsInput{SecretID: "b"}).PageBinding("") ||
		v.PageBinding("") == (ListSecretVersionIDsInput{SecretID: "a", IncludeDeprecated: &yes}).PageBinding("") {
		t.Error("ListSecretVersionIds binding")
	}
	b := BatchGetSecretValueInput{Filters: a.Filters}
	if b.PageBinding("") == a.PageBinding("") {
		t.Error("a ListSecrets token must not serve BatchGetSecretValue")
	}
}

func manySecrets(n int) []SecretFacts {
	var out []SecretFacts
	for i := 0; i < n; i++ {
		out = append(out, SecretFacts{Name: fmt.Sprintf("s%03d", i), CreatedDate: day(n - i), Tags: []Tag{{"i", fmt.Sprint(i % 2)}}})
	}
	return out
}

func walk(t *testing.T, all []SecretFacts, in ListSecretsInput) ([]string, int) {
	t.Helper()
	var got []string
	pages := 0
	for {
		page, next, err := ListSecretsPage(all, in, tokenKey, "ns")
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, names(page)...)
		if next == nil {
			return got, pages
		}
		if len(page) == 0 {
			t.Fatal("an empty page with a NextToken")
		}
		in.NextToken = next
	}
}

func TestListSecretsPage(t *testing.T) {
	all := manySecrets(25)
	ten := int32(10)
	got, pages := walk(t, all, ListSecretsInput{MaxResults: &ten, SortBy: ptr(SortByName)})
	if pages != 3 || len(got) != 25 || !slices.IsSorted(got) || got[0] != "s000" {
		t.Fatalf("%d pages: %q", pages, got)
	}
	// Default order: created-date ascending (s024 is the oldest).
	got, pages = walk(t, all, ListSecretsInput{MaxResults: &ten})
	if pages != 3 || got[0] != "s024" || got[24] != "s000" {
		t.Fatalf("%d pages: %q", pages, got)
	}
	got, _ = walk(t, all, ListSecretsInput{MaxResults: &ten, SortOrder: ptr(SortOrderDesc)})
	if got[0] != "s000" || got[24] != "s024" || len(got) != 25 {
		t.Fatalf("desc: %q", got)
	}
	// Filters apply before paging.
	got, pages = walk(t, all, ListSecretsInput{MaxResults: &ten, Filters: []Filter{filter(FilterTagValue, "1")}})
	if pages != 2 || len(got) != 12 {
		t.Fatalf("%d pages: %q", pages, got)
	}
	// Default page size: 100.
	page, next, err := ListSecretsPage(manySecrets(150), ListSecretsInput{}, tokenKey, "ns")
	if err != nil || len(page) != DefaultListSecretsMaxResults || next == nil {
		t.Fatalf("default page: %d, %v, %v", len(page), next, err)
	}
	// An exact fit has no NextToken.
	page, next, err = ListSecretsPage(manySecrets(10), ListSecretsInput{MaxResults: &ten}, tokenKey, "ns")
	if err != nil || len(page) != 10 || next != nil {
		t.Fatalf("exact page: %d, %v, %v", len(page), next, err)
	}
	page, next, err = ListSecretsPage(nil, ListSecretsInput{}, tokenKey, "ns")
	if err != nil || len(page) != 0 || next != nil {
		t.Fatalf("empty: %v %v %v", page, next, err)
	}
}

func TestListSecretsPageTokens(t *testing.T) {
	all := manySecrets(25)
	ten := int32(10)
	in := ListSecretsInput{MaxResults: &ten, SortBy: ptr(SortByName), Filters: []Filter{filter(FilterName, "s")}}
	_, next, err := ListSecretsPage(all, in, tokenKey, "ns")
	if err != nil || next == nil {
		t.Fatal(err)
	}
	// The page size may change between pages.
	five := int32(5)
	resumed := in
	resumed.NextToken, resumed.MaxResults = next, &five
	page, _, err := ListSecretsPage(all, resumed, tokenKey, "ns")
	if err != nil || !reflect.DeepEqual(names(page), []string{"s010", "s011", "s012", "s013", "s014"}) {
		t.Fatalf("resumed: %q, %v", names(page), err)
	}
	// A secret created before the boundary does not shift the next page.
	grown := append(slices.Clone(all), SecretFacts{Name: "s005a", CreatedDate: day(100)})
	page, _, err = ListSecretsPage(grown, resumed, tokenKey, "ns")
	if err != nil || names(page)[0] != "s010" {
		t.Fatalf("after an insert: %q, %v", names(page), err)
	}
	// The last secret returned deleted: the next page still starts after it.
	shrunk := slices.DeleteFunc(slices.Clone(all), func(s SecretFacts) bool { return s.Name == "s009" })
	page, _, err = ListSecretsPage(shrunk, resumed, tokenKey, "ns")
	if err != nil || names(page)[0] != "s010" {
		t.Fatalf("after a delete: %q, %v", names(page), err)
	}
	// The token is refused with other filters, sort, flags, scope or key.
	yes := true
	for name, other := range map[string]ListSecretsInput{
		"filters": {Filters: []Filter{filter(FilterName, "t")}, SortBy: ptr(SortByName)},
		"none":    {SortBy: ptr(SortByName)},
		"sort":    {Filters: in.Filters},
		"order":   {Filters: in.Filters, SortBy: ptr(SortByName), SortOrder: ptr(SortOrderDesc)},
		"deleted": {Filters: in.Filters, SortBy: ptr(SortByName), IncludePlannedDeletion: &yes},
	} {
		other.NextToken = next
		if _, _, err := ListSecretsPage(all, other, tokenKey, "ns"); awserr.CodeOf(err) != InvalidNextTokenException {
			t.Errorf("%s: %v, want InvalidNextTokenException", name, err)
		}
	}
	if _, _, err := ListSecretsPage(all, resumed, tokenKey, "other-ns"); awserr.CodeOf(err) != InvalidNextTokenException {
		t.Errorf("scope: %v", err)
	}
	if _, _, err := ListSecretsPage(all, resumed, []byte("another key of thirty-two bytes!"), "ns"); awserr.CodeOf(err) != InvalidNextTokenException {
		t.Errorf("key: %v", err)
	}
	// A signed state without a position is refused.
	empty := EncodeToken(tokenKey, PageState{Binding: in.PageBinding("ns")})
	noPos := in
	noPos.NextToken = &empty
	if _, _, err := ListSecretsPage(all, noPos, tokenKey, "ns"); awserr.CodeOf(err) != InvalidNextTokenException {
		t.Errorf("no position: %v", err)
	}
}

func TestListSecretsPagePlannedDeletion(t *testing.T) {
	all := []SecretFacts{{Name: "a", CreatedDate: day(1)}, {Name: "b", CreatedDate: day(2), PlannedDeletion: true}}
	page, _, _ := ListSecretsPage(all, ListSecretsInput{}, tokenKey, "")
	if !reflect.DeepEqual(names(page), []string{"a"}) {
		t.Errorf("default: %q", names(page))
	}
	yes := true
	page, _, _ = ListSecretsPage(all, ListSecretsInput{IncludePlannedDeletion: &yes}, tokenKey, "")
	if !reflect.DeepEqual(names(page), []string{"a", "b"}) {
		t.Errorf("IncludePlannedDeletion: %q", names(page))
	}
}

func TestBatchGetPage(t *testing.T) {
	all := manySecrets(45)
	all[0].PlannedDeletion = true
	in := BatchGetSecretValueInput{Filters: []Filter{filter(FilterName, "s")}}
	var got []string
	pages := 0
	for {
		page, next, err := BatchGetPage(all, in, tokenKey, "ns")
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, names(page)...)
		if next == nil {
			break
		}
		in.NextToken = next
	}
	if pages != 3 || len(got) != 44 || slices.Contains(got, "s000") || got[0] != "s044" {
		t.Fatalf("%d pages: %q", pages, got)
	}
	// A ListSecrets token does not serve BatchGetSecretValue.
	ten := int32(10)
	_, lnext, _ := ListSecretsPage(all, ListSecretsInput{Filters: in.Filters, MaxResults: &ten}, tokenKey, "ns")
	in.NextToken = lnext
	if _, _, err := BatchGetPage(all, in, tokenKey, "ns"); awserr.CodeOf(err) != InvalidNextTokenException {
		t.Errorf("ListSecrets token: %v", err)
	}
	// With SecretIdList: nothing selected, and no token accepted.
	page, next, err := BatchGetPage(all, BatchGetSecretValueInput{SecretIDList: []string{"s001"}}, tokenKey, "ns")
	if page != nil || next != nil || err != nil {
		t.Errorf("list mode: %v %v %v", page, next, err)
	}
	if _, _, err := BatchGetPage(all, BatchGetSecretValueInput{SecretIDList: []string{"s001"}, NextToken: lnext}, tokenKey, "ns"); awserr.CodeOf(err) != InvalidNextTokenException {
		t.Errorf("list mode with a token: %v", err)
	}
}

func TestListVersionsPage(t *testing.T) {
	all := []VersionFacts{
		{VersionID: "v3", Stages: []string{"AWSCURRENT"}, CreatedDate: day(3)},
		{VersionID: "v1", CreatedDate: day(1)},
		{VersionID: "v2", Stages: []string{"AWSPREVIOUS"}, CreatedDate: day(2)},
		{VersionID: "v2b", Stages: []string{"custom"}, CreatedDate: day(2)},
		{VersionID: "v0", CreatedDate: day(0)},
	}
	ids := func(vs []VersionFacts) []string {
		out := []string{}
		for _, v := range vs {
			out = append(out, v.VersionID)
		}
		return out
	}
	page, next, err := ListVersionsPage(all, ListSecretVersionIDsInput{SecretID: "a"}, tokenKey, "ns")
	if err != nil || next != nil || !reflect.DeepEqual(ids(page), []string{"v2", "v2b", "v3"}) {
		t.Fatalf("default: %q %v %v", ids(page), next, err)
	}
	yes, two := true, int32(2)
	in := ListSecretVersionIDsInput{SecretID: "a", IncludeDeprecated: &yes, MaxResults: &two}
	var got []string
	for {
		page, next, err := ListVersionsPage(all, in, tokenKey, "ns")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ids(page)...)
		if next == nil {
			break
		}
		in.NextToken = next
	}
	if !reflect.DeepEqual(got, []string{"v0", "v1", "v2", "v2b", "v3"}) {
		t.Fatalf("with deprecated: %q", got)
	}
	// The token is bound to the secret and to IncludeDeprecated.
	_, next, _ = ListVersionsPage(all, ListSecretVersionIDsInput{SecretID: "a", IncludeDeprecated: &yes, MaxResults: &two}, tokenKey, "ns")
	for _, other := range []ListSecretVersionIDsInput{{SecretID: "b", IncludeDeprecated: &yes}, {SecretID: "a"}} {
		other.NextToken = next
		if _, _, err := ListVersionsPage(all, other, tokenKey, "ns"); awserr.CodeOf(err) != InvalidNextTokenException {
			t.Errorf("%+v: %v", other, err)
		}
	}
}
