// Package awsauth authenticates requests to the AWS-compatible API the way AWS does: it verifies
// AWS Signature Version 4 (header form), issues and opens the stateless temporary credentials that
// the STS AssumeRoleWithWebIdentity emulation hands out, and speaks the STS Query protocol for that
// one action. It makes no Kubernetes calls; how access keys and web identity tokens resolve is the
// caller's business.
//
// Every refusal is an *awserr.Error carrying AWS's error type and a one-line message that never
// echoes a secret key, a session token or a signature; StatusOf gives the HTTP status to send.
package awsauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
)

const (
	// Algorithm is the only signing algorithm accepted.
	Algorithm = "AWS4-HMAC-SHA256"
	// DefaultMaxSkew is how far X-Amz-Date may be from the server's clock, as AWS allows.
	DefaultMaxSkew = 5 * time.Minute

	amzDateLayout = "20060102T150405Z"
	terminator    = "aws4_request"
)

// LookupFunc resolves the secret access key of an access key id. sessionToken is the request's
// X-Amz-Security-Token ("" when absent). It returns "" and a nil error for an unknown key (Verify
// answers UnrecognizedClientException), an *awserr.Error to refuse with that error (for example
// ExpiredTokenException), or any other error when it cannot tell (Verify returns that error
// wrapped; StatusOf maps it to 500).
type LookupFunc func(accessKeyID, sessionToken string) (secretKey string, err error)

// VerifyOptions configures Verify.
type VerifyOptions struct {
	// Now is the server's clock; time.Now when nil.
	Now func() time.Time
	// MaxSkew is how far X-Amz-Date may be from Now, either way; DefaultMaxSkew when <= 0.
	MaxSkew time.Duration
	// Service is the signing name the credential scope must carry ("secretsmanager", "sts").
	// Required.
	Service string
	// Regions are the regions a credential scope may carry; empty accepts any.
	Regions []string
	// Lookup resolves access keys (and session tokens). Required.
	Lookup LookupFunc
}

// Caller is who signed a verified request, and for which scope.
type Caller struct {
	AccessKeyID  string
	SessionToken string // X-Amz-Security-Token, "" for long-term keys
	Region       string // the credential scope's region
	Service      string // the credential scope's service
}

// authorization is a parsed "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..."
// header.
type authorization struct {
	AccessKeyID   string
	Date          string // scope date, YYYYMMDD
	Region        string
	Service       string
	Terminator    string
	SignedHeaders []string
	Signature     string
}

func (a *authorization) scope() string {
	return a.Date + "/" + a.Region + "/" + a.Service + "/" + a.Terminator
}

// parseAuthorization parses the Authorization header. Errors are IncompleteSignatureException.
func parseAuthorization(h string) (*authorization, *awserr.Error) {
	h = strings.TrimSpace(h)
	alg, rest, _ := strings.Cut(h, " ")
	if alg != Algorithm {
		if alg == "" {
			return nil, incomplete("Unsupported AWS 'algorithm'.")
		}
		return nil, incomplete(fmt.Sprintf("Unsupported AWS 'algorithm': '%s'.", clean(alg, 32)))
	}
	params := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, incomplete("Authorization header parameters must be Key=Value pairs separated by commas.")
		}
		k = strings.TrimSpace(k)
		switch k {
		case "Credential", "SignedHeaders", "Signature":
			if _, dup := params[k]; dup {
				return nil, incomplete(fmt.Sprintf("Authorization header has more than one '%s' parameter.", k))
			}
			params[k] = strings.TrimSpace(v)
		}
	}
	var missing []string
	for _, k := range []string{"Credential", "Signature", "SignedHeaders"} {
		if params[k] == "" {
			missing = append(missing, fmt.Sprintf("Authorization header requires '%s' parameter.", k))
		}
	}
	if len(missing) > 0 {
		return nil, incomplete(strings.Join(missing, " "))
	}

	cred := strings.Split(params["Credential"], "/")
	if len(cred) != 5 || slices.Contains(cred, "") {
		return nil, incomplete("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term.")
	}
	a := &authorization{
		AccessKeyID: cred[0], Date: cred[1], Region: cred[2], Service: cred[3], Terminator: cred[4],
		Signature: params["Signature"],
	}

	a.SignedHeaders = strings.Split(params["SignedHeaders"], ";")
	for i, name := range a.SignedHeaders {
		if !isLowerToken(name) || (i > 0 && name <= a.SignedHeaders[i-1]) {
			return nil, incomplete("SignedHeaders must be a sorted, semicolon-separated list of distinct lower-case header names.")
		}
		if name == "authorization" {
			return nil, incomplete("The Authorization header cannot be a 'SignedHeader'.")
		}
	}
	return a, nil
}

// isLowerToken reports whether s is a non-empty HTTP header name (RFC 9110 token) without
// upper-case letters.
func isLowerToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// single returns a header's only value; more than one is refused.
func single(r *http.Request, name string) (v string, present bool, err *awserr.Error) {
	vs := r.Header.Values(name)
	switch len(vs) {
	case 0:
		return "", false, nil
	case 1:
		return vs[0], true, nil
	}
	return "", true, incomplete(fmt.Sprintf("The request has more than one '%s' header.", name))
}

// Verify checks r's AWS Signature Version 4 (Authorization header form) against body, the
// request's complete payload as read by the caller, and returns who signed it.
//
// Checks, in order: an Authorization header is present (else MissingAuthenticationTokenException)
// and well-formed with algorithm AWS4-HMAC-SHA256; X-Amz-Date is present and in ISO 8601 basic
// format; SignedHeaders includes host and x-amz-date (all IncompleteSignatureException); the
// credential scope's terminator, date (= X-Amz-Date's date), service and region; X-Amz-Date within
// MaxSkew of Now; an X-Amz-Security-Token header is signed (IncompleteSignatureException); an
// X-Amz-Content-Sha256 header equals the body's SHA-256 (UNSIGNED-PAYLOAD and streaming payloads
// are refused); Lookup knows the access key (else UnrecognizedClientException); and the signature
// matches (InvalidSignatureException otherwise, compared in constant time).
//
// The canonical request is AWS's for non-S3 services: the URI path is the request's escaped path
// encoded once more; because the SDKs disagree on dot-segment and duplicate-slash normalisation
// (the Go and JavaScript SDKs sign the path as sent, botocore and the spec normalise it), a
// signature over either form is accepted, as AWS accepts both. The query string is decoded,
// re-encoded (RFC 3986, %20 for space) and sorted after encoding. Headers are lower-cased, their
// values trimmed with inner runs of spaces collapsed, repeated headers joined by commas; host comes
// from r.Host (r.URL.Host when empty) and content-length from r.ContentLength when the header map
// lacks it. The payload hash is always the one computed from body.
//
// Query-string (presigned) authentication is not supported: a request without an Authorization
// header gets MissingAuthenticationTokenException.
func Verify(r *http.Request, body []byte, opts VerifyOptions) (Caller, error) {
	if opts.Service == "" || opts.Lookup == nil {
		return Caller{}, errors.New("awsauth: VerifyOptions needs a Service and a Lookup")
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	maxSkew := opts.MaxSkew
	if maxSkew <= 0 {
		maxSkew = DefaultMaxSkew
	}

	authz := r.Header.Values("Authorization")
	if len(authz) == 0 || (len(authz) == 1 && strings.TrimSpace(authz[0]) == "") {
		return Caller{}, newErr(MissingAuthenticationToken, MsgMissingAuthenticationToken)
	}
	if len(authz) > 1 {
		return Caller{}, incomplete("The request has more than one 'Authorization' header.")
	}
	a, aerr := parseAuthorization(authz[0])
	if aerr != nil {
		return Caller{}, aerr
	}

	amzDate, ok, aerr := single(r, "X-Amz-Date")
	if aerr != nil {
		return Caller{}, aerr
	}
	if !ok {
		return Caller{}, incomplete("Authorization header requires existence of a 'X-Amz-Date' header.")
	}
	signedAt, err := time.Parse(amzDateLayout, amzDate)
	if err != nil || len(amzDate) != len(amzDateLayout) {
		return Caller{}, incomplete("X-Amz-Date must be in the ISO 8601 basic format YYYYMMDD'T'HHMMSS'Z'.")
	}

	if !slices.Contains(a.SignedHeaders, "host") {
		return Caller{}, incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	if !slices.Contains(a.SignedHeaders, "x-amz-date") {
		return Caller{}, incomplete("'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.")
	}

	if a.Terminator != terminator {
		return Caller{}, invalidSig(fmt.Sprintf("Credential should be scoped with a valid terminator: 'aws4_request', not '%s'.", clean(a.Terminator, 32)))
	}
	if a.Date != amzDate[:8] {
		return Caller{}, invalidSig(fmt.Sprintf("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			clean(a.Date, 16), amzDate[:8], amzDate))
	}
	if a.Service != opts.Service {
		return Caller{}, invalidSig(fmt.Sprintf("Credential should be scoped to correct service: '%s'.", opts.Service))
	}
	if len(opts.Regions) > 0 && !slices.Contains(opts.Regions, a.Region) {
		return Caller{}, invalidSig(fmt.Sprintf("Credential should be scoped to a valid region, not '%s'.", clean(a.Region, 32)))
	}

	t := now().UTC()
	if earliest := t.Add(-maxSkew); signedAt.Before(earliest) {
		return Caller{}, invalidSig(fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - %s.)",
			amzDate, earliest.Format(amzDateLayout), t.Format(amzDateLayout), skewText(maxSkew)))
	}
	if latest := t.Add(maxSkew); signedAt.After(latest) {
		return Caller{}, invalidSig(fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + %s.)",
			amzDate, latest.Format(amzDateLayout), t.Format(amzDateLayout), skewText(maxSkew)))
	}

	token, hasToken, aerr := single(r, "X-Amz-Security-Token")
	if aerr != nil {
		return Caller{}, aerr
	}
	if hasToken && !slices.Contains(a.SignedHeaders, "x-amz-security-token") {
		return Caller{}, incomplete("'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.")
	}

	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	declared, hasDeclared, aerr := single(r, "X-Amz-Content-Sha256")
	if aerr != nil {
		return Caller{}, aerr
	}
	if hasDeclared {
		if declared == "UNSIGNED-PAYLOAD" || strings.HasPrefix(declared, "STREAMING-") {
			return Caller{}, invalidSig("This service requires a signed payload: 'x-amz-content-sha256' must be the SHA-256 of the request body.")
		}
		if declared != payloadHash {
			return Caller{}, invalidSig("The provided 'x-amz-content-sha256' header does not match what was computed.")
		}
	}

	canonicalQuery, aerr := canonicalQueryString(r.URL.RawQuery)
	if aerr != nil {
		return Caller{}, aerr
	}

	secret, err := opts.Lookup(a.AccessKeyID, token)
	if err != nil {
		var e *awserr.Error
		if errors.As(err, &e) {
			return Caller{}, e
		}
		return Caller{}, fmt.Errorf("awsauth: looking up an access key: %w", err)
	}
	if secret == "" {
		return Caller{}, unrecognized()
	}

	headers := canonicalHeaders(r, a.SignedHeaders)
	signedHeaders := strings.Join(a.SignedHeaders, ";")
	key := signingKey(secret, a.Date, a.Region, a.Service)
	match := 0
	for _, uri := range canonicalURIs(r.URL) {
		creq := r.Method + "\n" + uri + "\n" + canonicalQuery + "\n" + headers + "\n" + signedHeaders + "\n" + payloadHash
		crsum := sha256.Sum256([]byte(creq))
		sts := Algorithm + "\n" + amzDate + "\n" + a.scope() + "\n" + hex.EncodeToString(crsum[:])
		want := hex.EncodeToString(hmacSHA256(key, []byte(sts)))
		match |= subtle.ConstantTimeCompare([]byte(want), []byte(a.Signature))
	}
	if match != 1 {
		return Caller{}, invalidSig(MsgSignatureMismatch)
	}
	return Caller{AccessKeyID: a.AccessKeyID, SessionToken: token, Region: a.Region, Service: a.Service}, nil
}

func skewText(d time.Duration) string {
	if d%time.Minute == 0 {
		return strconv.FormatInt(int64(d/time.Minute), 10) + " min"
	}
	return d.String()
}

func hmacSHA256(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}

func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), []byte(date))
	k = hmacSHA256(k, []byte(region))
	k = hmacSHA256(k, []byte(service))
	return hmacSHA256(k, []byte(terminator))
}

// canonicalHeaders is the CanonicalHeaders block: "name:value\n" per signed header, in the
// (already sorted) SignedHeaders order.
func canonicalHeaders(r *http.Request, names []string) string {
	var b strings.Builder
	for _, name := range names {
		var values []string
		switch name {
		case "host":
			h := r.Host
			if h == "" {
				h = r.Header.Get("Host")
			}
			if h == "" {
				h = r.URL.Host
			}
			values = []string{h}
		default:
			values = r.Header.Values(name)
			if len(values) == 0 && name == "content-length" && r.ContentLength > 0 {
				// A client-side request keeps its length outside the header map.
				values = []string{strconv.FormatInt(r.ContentLength, 10)}
			}
		}
		b.WriteString(name)
		b.WriteByte(':')
		for i, v := range values {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(trimAll(v))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// trimAll trims surrounding whitespace and collapses inner runs of spaces into one.
func trimAll(v string) string {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "  ") {
		return v
	}
	var b strings.Builder
	space := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b.WriteByte(c)
	}
	return b.String()
}

// canonicalURIs returns the canonical URI of the request path as sent, and — when it differs —
// of its normalised form (dot segments and empty segments removed), each encoded once more.
func canonicalURIs(u *url.URL) []string {
	raw := requestPath(u)
	uris := []string{escapePath(raw)}
	if n := removeDotSegments(raw); n != raw {
		uris = append(uris, escapePath(n))
	}
	return uris
}

// requestPath is the path as it went on the wire (the escaped path, or the path part of an
// Opaque URL), "/" when empty.
func requestPath(u *url.URL) string {
	p := u.EscapedPath()
	if u.Opaque != "" {
		o := u.Opaque
		if i := strings.IndexByte(o, '?'); i >= 0 {
			o = o[:i]
		}
		o = strings.TrimPrefix(o, "//")
		p = ""
		if i := strings.IndexByte(o, '/'); i >= 0 {
			p = o[i:]
		}
	}
	if p == "" {
		p = "/"
	}
	return p
}

// removeDotSegments normalises a path as botocore (and the SigV4 test suite) do: RFC 3986 dot
// segments resolved and empty segments dropped, keeping a leading and a trailing slash.
func removeDotSegments(p string) string {
	if p == "" {
		return "/"
	}
	var out []string
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	s := strings.Join(out, "/")
	if p[0] == '/' {
		s = "/" + s
	}
	if p[len(p)-1] == '/' && len(out) > 0 {
		s += "/"
	}
	if s == "" {
		s = "/"
	}
	return s
}

// unreserved reports whether c is an RFC 3986 unreserved character.
func unreserved(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

const upperHex = "0123456789ABCDEF"

// escapePath percent-encodes every byte but unreserved characters and '/'.
func escapePath(p string) string {
	return uriEncode(p, true)
}

func uriEncode(s string, keepSlash bool) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || (keepSlash && c == '/') {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&15])
	}
	return b.String()
}

// parseForm splits an application/x-www-form-urlencoded string (a query string or a Query
// protocol body) into decoded name/value pairs, in order. '+' decodes to a space; a name without
// '=' has an empty value; empty pieces are skipped. Semicolons are ordinary characters.
func parseForm(s string) ([][2]string, error) {
	var pairs [][2]string
	for piece := range strings.SplitSeq(s, "&") {
		if piece == "" {
			continue
		}
		k, v, _ := strings.Cut(piece, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			return nil, err
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			return nil, err
		}
		pairs = append(pairs, [2]string{dk, dv})
	}
	return pairs, nil
}

// canonicalQueryString re-encodes the query's names and values (RFC 3986 unreserved kept,
// everything else %XX) and sorts the pairs by encoded name, then encoded value.
func canonicalQueryString(raw string) (string, *awserr.Error) {
	pairs, err := parseForm(raw)
	if err != nil {
		return "", incomplete("The query string is not validly percent-encoded.")
	}
	enc := make([]string, len(pairs))
	for i, p := range pairs {
		enc[i] = uriEncode(p[0], false) + "=" + uriEncode(p[1], false)
	}
	slices.SortFunc(enc, func(x, y string) int {
		xk, xv, _ := strings.Cut(x, "=")
		yk, yv, _ := strings.Cut(y, "=")
		if c := strings.Compare(xk, yk); c != 0 {
			return c
		}
		return strings.Compare(xv, yv)
	})
	return strings.Join(enc, "&"), nil
}
