package value

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestGenerated(t *testing.T) {
	got, err := Generated(map[string]string{"engine": "postgres", "port": "5432"}, "", "p<&>w")
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"engine":"postgres","password":"p<&>w","port":"5432"}`; string(got) != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if _, err := Generated(map[string]string{"password": "x"}, "", "p"); err == nil || strings.Contains(err.Error(), `"p"`) {
		t.Fatalf("clash: %v", err)
	}
	got, _ = Generated(nil, "pw", "secret")
	if string(got) != `{"pw":"secret"}` {
		t.Fatalf("custom key: %s", got)
	}
}

func TestFromSecretData(t *testing.T) {
	got, err := FromSecretData(map[string][]byte{"user": []byte("app"), "password": []byte("s3cr3t")})
	if err != nil || string(got) != `{"password":"s3cr3t","user":"app"}` {
		t.Fatalf("got %s, %v", got, err)
	}
	_, err = FromSecretData(map[string][]byte{"bin": {0xff, 0xfe}})
	if !errors.Is(err, ErrNotUTF8) || strings.Contains(err.Error(), "\xff") {
		t.Fatalf("binary: %v", err)
	}
	if _, err := FromSecretData(nil); err == nil {
		t.Fatal("empty source accepted")
	}
}

func TestRender(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		key     string
		want    map[string][]byte
		wantErr error
	}{
		{"object fields", `{"username":"app","password":"pw","port":5432,"opts":{"a":1}}`, "",
			map[string][]byte{"username": []byte("app"), "password": []byte("pw"), "port": []byte("5432"), "opts": []byte(`{"a":1}`)}, nil},
		{"whole value under a key", `{"a":"b"}`, "config.json", map[string][]byte{"config.json": []byte(`{"a":"b"}`)}, nil},
		{"plain text", `hello`, "", map[string][]byte{"value": []byte("hello")}, nil},
		{"json array", `[1,2]`, "", map[string][]byte{"value": []byte("[1,2]")}, nil},
		{"json null", `null`, "", map[string][]byte{"value": []byte("null")}, nil},
		{"bad key", `{"a b":"c"}`, "", nil, ErrBadKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Render([]byte(tt.in), tt.key)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v", err)
			}
			if err == nil && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCheckSize(t *testing.T) {
	if err := CheckSize(make([]byte, DefaultLimit), DefaultLimit); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
	err := CheckSize(make([]byte, DefaultLimit+1), DefaultLimit)
	if !errors.Is(err, ErrTooBig) || err.Error() != "the value is 65537 bytes, over the limit of 65536 bytes" {
		t.Fatalf("over: %v", err)
	}
	if !errors.Is(CheckSize(nil, 10), ErrEmpty) {
		t.Fatal("empty accepted")
	}
}

// FuzzRender: rendering never panics, every key it returns is a valid Secret key, and an error
// never repeats the input.
func FuzzRender(f *testing.F) {
	f.Add([]byte(`{"a":"b","c":1}`), "")
	f.Add([]byte(`{"a b":"secret-x"}`), "")
	f.Add([]byte(`plain`), "k")
	f.Fuzz(func(t *testing.T, in []byte, key string) {
		if key != "" && !secretKey.MatchString(key) {
			return
		}
		out, err := Render(in, key)
		if err != nil {
			if len(in) >= 8 && strings.Contains(err.Error(), string(in)) {
				t.Fatal("the error repeats the value")
			}
			return
		}
		for k := range out {
			if !secretKey.MatchString(k) {
				t.Fatalf("invalid key %q", k)
			}
		}
	})
}
