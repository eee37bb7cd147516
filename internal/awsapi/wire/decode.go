package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/kube-secrets-manager/kube-secrets-manager/internal/awserr"
	"github.com/kube-secrets-manager/kube-secrets-manager/internal/value"
)

// maxValidationErrors is how many constraint violations one ValidationException lists, as AWS's
// request validation stops at ten.
const maxValidationErrors = 10

// Decode parses an operation's request body into its input shape T (one of this package's
// *Input types) the way AWS does, in AWS's order:
//
//  1. JSON: an empty, malformed or non-object body is a SerializationException with no message;
//     a member of the wrong JSON type is a SerializationException with AWS's wording ("Start of
//     structure or map found where not expected", "NUMBER_VALUE cannot be converted to String",
//     ...). Unknown members are ignored; a JSON null is an absent member.
//  2. Shape: required members, lengths, ranges, patterns and enums of the API model →
//     ValidationException "N validation error(s) detected: Value '<v>' at '<path>' failed to
//     satisfy constraint: <rule>; ..." (at most ten). A secret value (SecretString, SecretBinary,
//     RotationToken) is never echoed: its violations read "Value at '<path>' ...".
//  3. Names: a SecretId that is not an ARN, or a new Name, with a character outside
//     [A-Za-z0-9/_+=.@-] → ValidationException MsgInvalidName.
//  4. The operation's service checks that AWS makes before looking the secret up (both values,
//     a missing ClientRequestToken, RecoveryWindowInDays, BatchGetSecretValue's combinations,
//     filters without Key or Values, ...), with InvalidParameterException or
//     InvalidRequestException and AWS's (or moto's) messages.
//
// On any error the zero T is returned.
func Decode[T any](body []byte) (T, error) {
	var out, zero T
	rv := reflect.ValueOf(&out).Elem()
	if rv.Kind() != reflect.Struct {
		panic(fmt.Sprintf("wire: Decode of %s, not a struct", rv.Type()))
	}
	raw, err := parseBody(body)
	if err != nil {
		return zero, err
	}
	d := &decoder{}
	if err := d.decodeStruct(rv, raw, schemaOf(rv.Type()), ""); err != nil {
		return zero, err
	}
	if err := d.result(); err != nil {
		return zero, err
	}
	if c, ok := any(&out).(interface{ check() error }); ok {
		if err := c.check(); err != nil {
			return zero, err
		}
	}
	return out, nil
}

// DecodeInput decodes the input of an operation (by its X-Amz-Target name) as a pointer to its
// *Input type, e.g. *GetSecretValueInput. The replication operations, which have no input shape
// here, → Unsupported; a name that is no operation → UnknownOperationException.
func DecodeInput(op string, body []byte) (any, error) {
	f, ok := inputDecoders[op]
	if !ok {
		if modelled[op] {
			return nil, Unsupported(op)
		}
		return nil, &awserr.Error{Code: UnknownOperationException}
	}
	return f(body)
}

func decodeAs[T any](body []byte) (any, error) {
	v, err := Decode[T](body)
	if err != nil {
		return nil, err
	}
	return &v, nil
}

var inputDecoders = map[string]func([]byte) (any, error){
	OpBatchGetSecretValue:      decodeAs[BatchGetSecretValueInput],
	OpCancelRotateSecret:       decodeAs[CancelRotateSecretInput],
	OpCreateSecret:             decodeAs[CreateSecretInput],
	OpDeleteResourcePolicy:     decodeAs[DeleteResourcePolicyInput],
	OpDeleteSecret:             decodeAs[DeleteSecretInput],
	OpDescribeSecret:           decodeAs[DescribeSecretInput],
	OpGetRandomPassword:        decodeAs[GetRandomPasswordInput],
	OpGetResourcePolicy:        decodeAs[GetResourcePolicyInput],
	OpGetSecretValue:           decodeAs[GetSecretValueInput],
	OpListSecretVersionIDs:     decodeAs[ListSecretVersionIDsInput],
	OpListSecrets:              decodeAs[ListSecretsInput],
	OpPutResourcePolicy:        decodeAs[PutResourcePolicyInput],
	OpPutSecretValue:           decodeAs[PutSecretValueInput],
	OpRestoreSecret:            decodeAs[RestoreSecretInput],
	OpRotateSecret:             decodeAs[RotateSecretInput],
	OpTagResource:              decodeAs[TagResourceInput],
	OpUntagResource:            decodeAs[UntagResourceInput],
	OpUpdateSecret:             decodeAs[UpdateSecretInput],
	OpUpdateSecretVersionStage: decodeAs[UpdateSecretVersionStageInput],
	OpValidateResourcePolicy:   decodeAs[ValidateResourcePolicyInput],
}

// bareSerialization is AWS's answer to a body that is not a JSON object: the type, no message.
func bareSerialization() error { return &awserr.Error{Code: SerializationException} }

func serialization(msg string) error {
	return &awserr.Error{Code: SerializationException, Message: msg}
}

func parseBody(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, bareSerialization()
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bareSerialization()
	}
	switch m := v.(type) {
	case nil:
		return map[string]any{}, nil
	case map[string]any:
		return m, nil
	}
	return nil, bareSerialization()
}

type nameCheck struct {
	value string
	name  bool // a new Name (else a SecretId, which may be an ARN)
}

type decoder struct {
	violations []string
	// valueTooLarge is set when a secret value is over AWS's length limit (counted in the metrics).
	valueTooLarge bool
	names         []nameCheck
}

func (d *decoder) violate(path string, value string, sensitive bool, rule string) {
	if len(d.violations) >= maxValidationErrors {
		return
	}
	if sensitive {
		d.violations = append(d.violations, fmt.Sprintf("Value at '%s' failed to satisfy constraint: %s", path, rule))
		return
	}
	d.violations = append(d.violations, fmt.Sprintf("Value '%s' at '%s' failed to satisfy constraint: %s", value, path, rule))
}

func (d *decoder) violateNull(path string) {
	if len(d.violations) >= maxValidationErrors {
		return
	}
	d.violations = append(d.violations, fmt.Sprintf("Value null at '%s' failed to satisfy constraint: Member must not be null", path))
}

func (d *decoder) result() error {
	if n := len(d.violations); n > 0 {
		plural := "s"
		if n == 1 {
			plural = ""
		}
		err := &awserr.Error{Code: ValidationException,
			Message: fmt.Sprintf("%d validation error%s detected: %s", n, plural, strings.Join(d.violations, "; "))}
		if d.valueTooLarge {
			return value.MarkTooBig(err)
		}
		return err
	}
	for _, c := range d.names {
		if c.name {
			if !validNameChars(c.value) {
				return invalidName()
			}
			continue
		}
		if !strings.HasPrefix(c.value, "arn:") && !validNameChars(c.value) {
			return invalidName()
		}
	}
	return nil
}

func (d *decoder) decodeStruct(rv reflect.Value, raw map[string]any, s *structSchema, prefix string) error {
	for _, f := range s.fields {
		path := prefix + f.path
		v := raw[f.jsonKey]
		if v == nil {
			if f.c.required {
				d.violateNull(path)
			}
			continue
		}
		if err := d.decodeField(rv.Field(f.index), v, f, path); err != nil {
			return err
		}
	}
	return nil
}

func set(fv reflect.Value, ptr bool, v reflect.Value) {
	if ptr {
		p := reflect.New(v.Type())
		p.Elem().Set(v)
		fv.Set(p)
		return
	}
	fv.Set(v)
}

func (d *decoder) decodeField(fv reflect.Value, v any, f field, path string) error {
	switch f.kind {
	case kString:
		s, err := asString(v)
		if err != nil {
			return err
		}
		d.checkString(path, s, f.c)
		set(fv, f.ptr, reflect.ValueOf(s))
	case kBool:
		b, err := asBool(v)
		if err != nil {
			return err
		}
		set(fv, f.ptr, reflect.ValueOf(b))
	case kInt32, kInt64:
		n, err := asInt(v, f.kind)
		if err != nil {
			return err
		}
		d.checkRange(path, n, f.c)
		if f.kind == kInt32 {
			set(fv, f.ptr, reflect.ValueOf(int32(n)))
		} else {
			set(fv, f.ptr, reflect.ValueOf(n))
		}
	case kBlob:
		b, err := asBlob(v)
		if err != nil {
			return err
		}
		d.checkLength(path, "", int64(len(b)), f.c)
		fv.Set(reflect.ValueOf(b))
	case kStruct:
		m, err := asObject(v)
		if err != nil {
			return err
		}
		sv := reflect.New(f.sub.typ).Elem()
		if err := d.decodeStruct(sv, m, f.sub, path+"."); err != nil {
			return err
		}
		set(fv, f.ptr, sv)
	case kList:
		arr, err := asArray(v)
		if err != nil {
			return err
		}
		d.checkLength(path, render(v), int64(len(arr)), f.c)
		list := reflect.MakeSlice(fv.Type(), len(arr), len(arr))
		for i, e := range arr {
			ep := path + "." + strconv.Itoa(i+1) + ".member"
			if e == nil {
				d.violateNull(ep)
				continue
			}
			switch f.elem {
			case kString:
				s, err := asString(e)
				if err != nil {
					return err
				}
				d.checkString(ep, s, f.each)
				list.Index(i).SetString(s)
			case kStruct:
				m, err := asObject(e)
				if err != nil {
					return err
				}
				if err := d.decodeStruct(list.Index(i), m, f.sub, ep+"."); err != nil {
					return err
				}
			}
		}
		fv.Set(list)
	}
	return nil
}

// length is a string's length as AWS counts it: UTF-16 code units (Java's String.length), or
// UTF-8 bytes where the reference says so (secret values).
func length(s string, bytes bool) int64 {
	if bytes {
		return int64(len(s))
	}
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return int64(n)
}

func (d *decoder) checkLength(path, value string, n int64, c constraints) {
	if c.minLen != nil && n < *c.minLen {
		d.violate(path, value, c.sensitive, fmt.Sprintf("Member must have length greater than or equal to %d", *c.minLen))
	}
	if c.maxLen != nil && n > *c.maxLen {
		d.violate(path, value, c.sensitive, fmt.Sprintf("Member must have length less than or equal to %d", *c.maxLen))
		d.valueTooLarge = d.valueTooLarge || path == "secretString" || path == "secretBinary"
	}
}

func (d *decoder) checkString(path, s string, c constraints) {
	d.checkLength(path, s, length(s, c.bytes), c)
	if c.pattern != "" && !compiledPatterns[c.pattern].MatchString(s) {
		d.violate(path, s, c.sensitive, "Member must satisfy regular expression pattern: "+patterns[c.pattern])
	}
	if c.enum != "" && !slices.Contains(enums[c.enum], s) {
		d.violate(path, s, c.sensitive, "Member must satisfy enum value set: ["+strings.Join(enums[c.enum], ", ")+"]")
	}
	if c.id || c.name {
		d.names = append(d.names, nameCheck{value: s, name: c.name})
	}
}

func (d *decoder) checkRange(path string, n int64, c constraints) {
	v := strconv.FormatInt(n, 10)
	if c.minVal != nil && n < *c.minVal {
		d.violate(path, v, c.sensitive, fmt.Sprintf("Member must have value greater than or equal to %d", *c.minVal))
	}
	if c.maxVal != nil && n > *c.maxVal {
		d.violate(path, v, c.sensitive, fmt.Sprintf("Member must have value less than or equal to %d", *c.maxVal))
	}
}

// render prints a JSON value the way AWS's messages print a list: [a, b], objects as {K=v, ...}.
func render(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = render(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + render(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

// The type checks below word their messages as AWS's JSON deserializer does.

const msgStartOfStructure = "Start of structure or map found where not expected"

func numberKind(n json.Number) string {
	if strings.ContainsAny(n.String(), ".eE") {
		return "DECIMAL_VALUE"
	}
	return "NUMBER_VALUE"
}

func boolKind(b bool) string {
	if b {
		return "TRUE_VALUE"
	}
	return "FALSE_VALUE"
}

func asString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return "", serialization(boolKind(x) + " cannot be converted to String")
	case json.Number:
		return "", serialization(numberKind(x) + " cannot be converted to String")
	case []any:
		return "", serialization("Unrecognized collection type class java.lang.String")
	}
	return "", serialization(msgStartOfStructure)
}

func asBool(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		// AWS's deserializer takes these strings for booleans.
		switch strings.ToUpper(x) {
		case "TRUE", "1", "YES":
			return true, nil
		case "FALSE", "0", "NO":
			return false, nil
		}
		return false, serialization("Unexpected token received from parser")
	case json.Number:
		return false, serialization(numberKind(x) + " cannot be converted to Boolean")
	case []any:
		return false, serialization("Unrecognized collection type class java.lang.Boolean")
	}
	return false, serialization(msgStartOfStructure)
}

func asInt(v any, k kind) (int64, error) {
	javaType, lo, hi := "Long", int64(math.MinInt64), int64(math.MaxInt64)
	if k == kInt32 {
		javaType, lo, hi = "Integer", math.MinInt32, math.MaxInt32
	}
	switch x := v.(type) {
	case json.Number:
		fail := serialization(numberKind(x) + " cannot be converted to " + javaType)
		var n int64
		if numberKind(x) == "NUMBER_VALUE" {
			var err error
			if n, err = strconv.ParseInt(x.String(), 10, 64); err != nil {
				return 0, fail
			}
		} else {
			// A decimal is truncated towards negative infinity, as AWS does. ±2^63 are
			// exact floats, so the bounds below are exact.
			f, err := strconv.ParseFloat(x.String(), 64)
			if err != nil || math.IsNaN(f) || math.Floor(f) < -(1<<63) || math.Floor(f) >= 1<<63 {
				return 0, fail
			}
			n = int64(math.Floor(f))
		}
		if n < lo || n > hi {
			return 0, fail
		}
		return n, nil
	case bool:
		return 0, serialization(boolKind(x) + " cannot be converted to " + javaType)
	case string:
		return 0, serialization("STRING_VALUE cannot be converted to " + javaType)
	case []any:
		return 0, serialization("Unrecognized collection type class java.lang." + javaType)
	}
	return 0, serialization(msgStartOfStructure)
}

func asBlob(v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		if len(x)%4 != 0 {
			return nil, serialization(fmt.Sprintf("Base64 encoded length is expected a multiple of 4 bytes but found: %d", len(x)))
		}
		b, err := base64.StdEncoding.DecodeString(x)
		if err != nil {
			// AWS's wording, its spelling included; the offending character is never echoed.
			return nil, serialization("Invalid last non-pad Base64 character dectected")
		}
		if b == nil {
			b = []byte{}
		}
		return b, nil
	case bool, json.Number:
		return nil, serialization("only base-64-encoded strings are convertible to bytes")
	case []any:
		return nil, serialization("Unrecognized collection type class java.nio.ByteBuffer")
	}
	return nil, serialization(msgStartOfStructure)
}

func asObject(v any) (map[string]any, error) {
	switch x := v.(type) {
	case map[string]any:
		return x, nil
	case []any:
		return nil, serialization("Start of list found where not expected")
	}
	return nil, serialization("Unexpected field type")
}

func asArray(v any) ([]any, error) {
	switch x := v.(type) {
	case []any:
		return x, nil
	case map[string]any:
		return nil, serialization(msgStartOfStructure)
	}
	return nil, serialization("Unexpected field type")
}
