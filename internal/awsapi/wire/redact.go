package wire

import (
	"fmt"
	"reflect"
	"strings"
)

// The shapes that carry a secret value print it as *** with %v, %+v, %s and %#v, so a value
// never reaches a log line through fmt by accident. JSON encoding is unaffected.

const redacted = "***"

func redactString(s *string) *string {
	if s == nil {
		return nil
	}
	r := redacted
	return &r
}

func redactBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return []byte(redacted)
}

type (
	getSecretValueOutputView GetSecretValueOutput
	createSecretInputView    CreateSecretInput
	putSecretValueInputView  PutSecretValueInput
	updateSecretInputView    UpdateSecretInput
)

func (o GetSecretValueOutput) view() getSecretValueOutputView {
	o.SecretString, o.SecretBinary = redactString(o.SecretString), redactBytes(o.SecretBinary)
	return getSecretValueOutputView(o)
}

// String prints the output with its value redacted.
func (o GetSecretValueOutput) String() string { return sprint(o.view()) }

// GoString prints the output with its value redacted.
func (o GetSecretValueOutput) GoString() string { return sprint(o.view()) }

// String prints the entry with its value redacted.
func (e SecretValueEntry) String() string { return GetSecretValueOutput(e).String() }

// GoString prints the entry with its value redacted.
func (e SecretValueEntry) GoString() string { return GetSecretValueOutput(e).String() }

// String prints the input with its value redacted.
func (in CreateSecretInput) String() string {
	in.SecretString, in.SecretBinary = redactString(in.SecretString), redactBytes(in.SecretBinary)
	return sprint(createSecretInputView(in))
}

// GoString prints the input with its value redacted.
func (in CreateSecretInput) GoString() string { return in.String() }

// String prints the input with its value and rotation token redacted.
func (in PutSecretValueInput) String() string {
	in.SecretString, in.SecretBinary = redactString(in.SecretString), redactBytes(in.SecretBinary)
	in.RotationToken = redactString(in.RotationToken)
	return sprint(putSecretValueInputView(in))
}

// GoString prints the input with its value redacted.
func (in PutSecretValueInput) GoString() string { return in.String() }

// String prints the input with its value redacted.
func (in UpdateSecretInput) String() string {
	in.SecretString, in.SecretBinary = redactString(in.SecretString), redactBytes(in.SecretBinary)
	return sprint(updateSecretInputView(in))
}

// GoString prints the input with its value redacted.
func (in UpdateSecretInput) GoString() string { return in.String() }

// String prints the output with the password redacted.
func (o GetRandomPasswordOutput) String() string { return "{RandomPassword:" + redacted + "}" }

// GoString prints the output with the password redacted.
func (o GetRandomPasswordOutput) GoString() string { return o.String() }

// sprint prints a struct as {Field:value ...}, following pointers and printing []byte as text
// (only ever called on redacted copies).
func sprint(v any) string {
	rv := reflect.ValueOf(v)
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i < rv.NumField(); i++ {
		f := rv.Field(i)
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(rv.Type().Field(i).Name)
		b.WriteByte(':')
		for f.Kind() == reflect.Pointer {
			if f.IsNil() {
				break
			}
			f = f.Elem()
		}
		switch {
		case f.Kind() == reflect.Pointer:
			b.WriteString("<nil>")
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Uint8:
			b.Write(f.Bytes())
		default:
			fmt.Fprintf(&b, "%v", f.Interface())
		}
	}
	b.WriteByte('}')
	return b.String()
}
