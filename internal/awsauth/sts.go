package awsauth

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
)

const (
	// STSVersion is the STS API version of the Query protocol.
	STSVersion = "2011-06-15"
	// STSNamespace is the XML namespace of STS responses.
	STSNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"

	actionAssumeRoleWithWebIdentity = "AssumeRoleWithWebIdentity"
	defaultDurationSeconds          = 3600
	redacted                        = "*** Sensitive Data Redacted ***"
)

// AssumeInput is a parsed, validated AssumeRoleWithWebIdentity request.
type AssumeInput struct {
	RoleARN          string
	RoleSessionName  string
	WebIdentityToken string
	// DurationSeconds is the requested lifetime, 900 to 43200; 3600 when the request has none.
	// (Capping it by the role's maximum is the caller's business.)
	DurationSeconds int32
	// Optional parameters, length-checked only; the caller decides whether it honours them.
	ProviderID string
	Policy     string
	PolicyARNs []string // PolicyArns.member.N.arn, in N order
}

var roleSessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]*$`)

// ParseAssumeRoleWithWebIdentity parses and validates a Query-protocol request body
// (application/x-www-form-urlencoded) as STS does. A wrong or missing Action, or a Version other
// than 2011-06-15, is InvalidAction; a body that does not decode, a repeated parameter, or
// parameters outside STS's constraints are ValidationError, with STS's message form ("N validation
// error(s) detected: Value '...' at 'roleArn' failed to satisfy constraint: ..."). The web
// identity token is never quoted, and quoted values are cut to 256 bytes. Parameters it does not
// know (MinimumSessionTokenSize, ...) are ignored.
func ParseAssumeRoleWithWebIdentity(body []byte) (AssumeInput, error) {
	policyARNs := map[int]string{}
	params, err := queryParams(body, func(k, v string) error {
		if rest, ok := strings.CutPrefix(k, "PolicyArns.member."); ok {
			n, ok := strings.CutSuffix(rest, ".arn")
			i, err := strconv.Atoi(n)
			if !ok || err != nil || i < 1 || strconv.Itoa(i) != n {
				return newErr(STSValidationError, fmt.Sprintf("The parameter %s is not valid.", clean(k, 64)))
			}
			policyARNs[i] = v
		}
		return nil
	})
	if err != nil {
		return AssumeInput{}, err
	}

	if err := checkAction(params, actionAssumeRoleWithWebIdentity); err != nil {
		return AssumeInput{}, err
	}

	var v validation
	in := AssumeInput{DurationSeconds: defaultDurationSeconds}
	var present bool

	in.RoleARN, present = params["RoleArn"]
	if v.required("roleArn", present) {
		v.length("roleArn", in.RoleARN, 20, 2048, false)
		v.pattern("roleArn", in.RoleARN, validXMLText(in.RoleARN),
			`[\u0009\u000A\u000D\u0020-\u007E\u0085\u00A0-\uD7FF\uE000-\uFFFD\u10000-\u10FFFF]+`)
	}

	in.RoleSessionName, present = params["RoleSessionName"]
	if v.required("roleSessionName", present) {
		v.length("roleSessionName", in.RoleSessionName, 2, 64, false)
		v.pattern("roleSessionName", in.RoleSessionName,
			utf8.ValidString(in.RoleSessionName) && roleSessionNamePattern.MatchString(in.RoleSessionName), `[\w+=,.@-]*`)
	}

	in.WebIdentityToken, present = params["WebIdentityToken"]
	if v.required("webIdentityToken", present) {
		v.length("webIdentityToken", in.WebIdentityToken, 4, 20000, true)
	}

	if d, ok := params["DurationSeconds"]; ok {
		n, err := strconv.ParseInt(d, 10, 32)
		switch {
		case err != nil:
			v.add("durationSeconds", d, false, "Member must be an integer")
		case n < 900:
			v.add("durationSeconds", d, false, "Member must have value greater than or equal to 900")
		case n > 43200:
			v.add("durationSeconds", d, false, "Member must have value less than or equal to 43200")
		default:
			in.DurationSeconds = int32(n)
		}
	}
	if p, ok := params["ProviderId"]; ok {
		in.ProviderID = p
		v.length("providerId", p, 4, 2048, false)
	}
	if p, ok := params["Policy"]; ok {
		in.Policy = p
		v.length("policy", p, 1, 2048, false)
	}
	if len(policyARNs) > 0 {
		idx := make([]int, 0, len(policyARNs))
		for i := range policyARNs {
			idx = append(idx, i)
		}
		slices.Sort(idx)
		for _, i := range idx {
			in.PolicyARNs = append(in.PolicyARNs, policyARNs[i])
			v.length(fmt.Sprintf("policyArns.%d.member.arn", i), policyARNs[i], 20, 2048, false)
		}
		if len(in.PolicyARNs) > 10 {
			v.msgs = append(v.msgs, "Value at 'policyArns' failed to satisfy constraint: Member must have length less than or equal to 10")
		}
	}
	if err := v.err(); err != nil {
		return AssumeInput{}, err
	}
	return in, nil
}

// validation collects constraint violations the way AWS's validator reports them.
type validation struct{ msgs []string }

func (v *validation) add(member, value string, sensitive bool, constraint string) {
	shown := "'" + truncate(value, 256) + "'"
	if sensitive {
		shown = "'" + redacted + "'"
	}
	v.msgs = append(v.msgs, fmt.Sprintf("Value %s at '%s' failed to satisfy constraint: %s", shown, member, constraint))
}

// required records a missing member; it reports whether the member is there to check further.
func (v *validation) required(member string, present bool) bool {
	if !present {
		v.msgs = append(v.msgs, fmt.Sprintf("Value null at '%s' failed to satisfy constraint: Member must not be null", member))
		return false
	}
	return true
}

func (v *validation) length(member, value string, min, max int, sensitive bool) {
	switch n := utf16Len(value); {
	case n < min:
		v.add(member, value, sensitive, fmt.Sprintf("Member must have length greater than or equal to %d", min))
	case n > max:
		v.add(member, value, sensitive, fmt.Sprintf("Member must have length less than or equal to %d", max))
	}
}

func (v *validation) pattern(member, value string, ok bool, pattern string) {
	if !ok {
		v.add(member, value, false, "Member must satisfy regular expression pattern: "+pattern)
	}
}

func (v *validation) err() error {
	switch len(v.msgs) {
	case 0:
		return nil
	case 1:
		return newErr(STSValidationError, "1 validation error detected: "+v.msgs[0])
	}
	return newErr(STSValidationError, fmt.Sprintf("%d validation errors detected: %s", len(v.msgs), strings.Join(v.msgs, "; ")))
}

// utf16Len is a string's length as AWS (Java) counts it: UTF-16 code units.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n++
		if r > 0xFFFF {
			n++
		}
	}
	return n
}

// truncate cuts s to at most max bytes on a rune boundary, marking the cut.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max] + "..."
}

// validXMLText reports whether s is valid UTF-8 made only of the characters STS's RoleArn pattern
// allows.
func validXMLText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		switch {
		case r == 0x09, r == 0x0A, r == 0x0D, r >= 0x20 && r <= 0x7E, r == 0x85,
			r >= 0xA0 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD, r >= 0x10000 && r <= 0x10FFFF:
		default:
			return false
		}
	}
	return true
}

// queryParams decodes a Query-protocol body into its parameters, each at most once, calling each
// (when not nil) with every parameter in the body's order.
func queryParams(body []byte, each func(k, v string) error) (map[string]string, error) {
	pairs, err := parseForm(string(body))
	if err != nil {
		return nil, newErr(STSValidationError, "The request body is not valid application/x-www-form-urlencoded data.")
	}
	params := map[string]string{}
	for _, p := range pairs {
		k, v := p[0], p[1]
		if _, dup := params[k]; dup {
			return nil, newErr(STSValidationError, fmt.Sprintf("The parameter %s appears more than once.", clean(k, 64)))
		}
		params[k] = v
		if each != nil {
			if err := each(k, v); err != nil {
				return nil, err
			}
		}
	}
	return params, nil
}

// checkAction is STS's answer to an Action other than want, or a Version other than 2011-06-15:
// InvalidAction.
func checkAction(params map[string]string, want string) error {
	action, ok := params["Action"]
	if !ok || action == "" {
		return newErr(STSInvalidAction, "The action or operation requested is invalid. Verify that the action is typed correctly.")
	}
	version, ok := params["Version"]
	if !ok || version == "" {
		version = "NO_VERSION_SPECIFIED"
	}
	if action != want || version != STSVersion {
		return newErr(STSInvalidAction, fmt.Sprintf("Could not find operation %s for version %s", clean(action, 64), clean(version, 32)))
	}
	return nil
}

// AssumedRoleARN is the ARN STS gives the session of a role:
// arn:aws:iam::123456789012:role/path/Name and session s give
// arn:aws:sts::123456789012:assumed-role/Name/s. It is "" when roleARN is not an IAM role ARN.
func AssumedRoleARN(roleARN, sessionName string) string {
	parts := strings.SplitN(roleARN, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iam" || parts[1] == "" || parts[4] == "" {
		return ""
	}
	resource, ok := strings.CutPrefix(parts[5], "role/")
	if !ok || resource == "" {
		return ""
	}
	name := resource[strings.LastIndexByte(resource, '/')+1:]
	if name == "" {
		return ""
	}
	return "arn:" + parts[1] + ":sts::" + parts[4] + ":assumed-role/" + name + "/" + sessionName
}

// AssumeOutput is what an AssumeRoleWithWebIdentity response carries.
type AssumeOutput struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time // written in UTC, to the second

	SubjectFromWebIdentityToken string // the token's sub, e.g. system:serviceaccount:ns:name
	AssumedRoleARN              string // see AssumedRoleARN
	AssumedRoleID               string // "<role id>:<session name>"
	Audience                    string
	Provider                    string
	SourceIdentity              string // omitted when empty

	RequestID string
}

type xmlCredentials struct {
	SessionToken    string `xml:"SessionToken"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	Expiration      string `xml:"Expiration"`
	AccessKeyID     string `xml:"AccessKeyId"`
}

type xmlAssumedRoleUser struct {
	Arn           string `xml:"Arn"`
	AssumedRoleID string `xml:"AssumedRoleId"`
}

type xmlAssumeResponse struct {
	XMLName xml.Name `xml:"AssumeRoleWithWebIdentityResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Result  struct {
		SubjectFromWebIdentityToken string             `xml:"SubjectFromWebIdentityToken"`
		Audience                    string             `xml:"Audience"`
		AssumedRoleUser             xmlAssumedRoleUser `xml:"AssumedRoleUser"`
		Credentials                 xmlCredentials     `xml:"Credentials"`
		SourceIdentity              string             `xml:"SourceIdentity,omitempty"`
		Provider                    string             `xml:"Provider"`
	} `xml:"AssumeRoleWithWebIdentityResult"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

type xmlErrorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}

// WriteAssumeRoleResponse writes a 200 AssumeRoleWithWebIdentityResponse as STS does (text/xml,
// x-amzn-RequestId header, element order of STS's own responses).
func WriteAssumeRoleResponse(w http.ResponseWriter, out AssumeOutput) {
	var x xmlAssumeResponse
	x.Xmlns = STSNamespace
	x.Result.SubjectFromWebIdentityToken = out.SubjectFromWebIdentityToken
	x.Result.Audience = out.Audience
	x.Result.AssumedRoleUser = xmlAssumedRoleUser{Arn: out.AssumedRoleARN, AssumedRoleID: out.AssumedRoleID}
	x.Result.Credentials = xmlCredentials{
		SessionToken:    out.SessionToken,
		SecretAccessKey: out.SecretAccessKey,
		Expiration:      out.Expiration.UTC().Truncate(time.Second).Format(time.RFC3339),
		AccessKeyID:     out.AccessKeyID,
	}
	x.Result.SourceIdentity = out.SourceIdentity
	x.Result.Provider = out.Provider
	x.RequestID = out.RequestID
	writeXML(w, http.StatusOK, out.RequestID, x)
}

// WriteSTSError writes an STS ErrorResponse: <Error><Type>Sender</Type><Code>..</Code>
// <Message>..</Message></Error><RequestId>..</RequestId>. Type is Receiver for a 5xx status.
// status is usually StatusOf of the error (see the STS* codes).
func WriteSTSError(w http.ResponseWriter, status int, code, message, requestID string) {
	var x xmlErrorResponse
	x.Xmlns = STSNamespace
	x.Error.Type = "Sender"
	if status >= 500 {
		x.Error.Type = "Receiver"
	}
	x.Error.Code = code
	x.Error.Message = message
	x.RequestID = requestID
	writeXML(w, status, requestID, x)
}

// WriteSTSErr writes err as an STS ErrorResponse: an *awserr.Error with its code, message and
// StatusOf status; any other error as a 500 InternalFailure without its text.
func WriteSTSErr(w http.ResponseWriter, err error, requestID string) {
	var e *awserr.Error
	if !errors.As(err, &e) {
		WriteSTSError(w, http.StatusInternalServerError, "InternalFailure",
			"The request processing has failed because of an unknown error, exception or failure.", requestID)
		return
	}
	WriteSTSError(w, StatusOf(e), e.Code, e.Message, requestID)
}

func writeXML(w http.ResponseWriter, status int, requestID string, v any) {
	var buf bytes.Buffer
	if err := xml.NewEncoder(&buf).Encode(v); err != nil {
		// Only strings are encoded; this cannot happen.
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/xml")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	if requestID != "" {
		h.Set("x-amzn-RequestId", requestID)
	}
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
