package wire

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// The model's patterns, by name: the text is printed in messages exactly as the model spells it,
// and a value must match it whole (AWS checks patterns against the entire value).
var patterns = map[string]string{
	"filterValue":   `^\!?[a-zA-Z0-9 :_@\/\+\=\.\-\!]*$`,
	"duration":      `[0-9]+h`,
	"schedule":      `[0-9A-Za-z\(\)#\?\*\-\/, ]+`,
	"rotationToken": `^[a-zA-Z0-9\-]+$`,
	"region":        `^([a-z]+-)+\d+$`,
}

var compiledPatterns = func() map[string]*regexp.Regexp {
	out := map[string]*regexp.Regexp{}
	for name, p := range patterns {
		out[name] = regexp.MustCompile(`^(?:` + p + `)$`)
	}
	return out
}()

// The model's enums, by name, in the model's order (the order printed in messages).
var enums = map[string][]string{
	"filterKey": {FilterDescription, FilterName, FilterTagKey, FilterTagValue, FilterPrimaryRegion, FilterOwningService, FilterAll},
	"sortBy":    {SortByCreatedDate, SortByLastAccessedDate, SortByLastChangedDate, SortByName},
	"sortOrder": {SortOrderAsc, SortOrderDesc},
}

type kind int

const (
	kString kind = iota
	kBool
	kInt32
	kInt64
	kBlob
	kList
	kStruct
)

// constraints are the model's rules for one member (or, under each., for each entry of a list).
type constraints struct {
	required  bool
	sensitive bool
	bytes     bool // string length in UTF-8 bytes
	minLen    *int64
	maxLen    *int64
	minVal    *int64
	maxVal    *int64
	enum      string
	pattern   string
	id        bool // a SecretId: the name check of §1.2
	name      bool // a new secret's Name
}

type field struct {
	index   int
	jsonKey string
	path    string // Coral's member path element: the name with its first letter in lower case
	kind    kind
	ptr     bool // the Go field is a pointer
	c       constraints
	each    constraints // for lists of strings
	elem    kind        // for lists
	sub     *structSchema
}

type structSchema struct {
	typ    reflect.Type
	fields []field
}

var schemas sync.Map // reflect.Type → *structSchema

func schemaOf(t reflect.Type) *structSchema {
	if s, ok := schemas.Load(t); ok {
		return s.(*structSchema)
	}
	s := buildSchema(t)
	schemas.Store(t, s)
	return s
}

func buildSchema(t reflect.Type) *structSchema {
	s := &structSchema{typ: t}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		key, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if key == "" || key == "-" || !sf.IsExported() {
			continue
		}
		f := field{index: i, jsonKey: key, path: strings.ToLower(key[:1]) + key[1:]}
		f.c, f.each = parseConstraints(t, sf)
		ft := sf.Type
		if ft.Kind() == reflect.Pointer {
			f.ptr = true
			ft = ft.Elem()
		}
		f.kind, f.elem, f.sub = kindOf(t, sf, ft)
		s.fields = append(s.fields, f)
	}
	return s
}

func kindOf(t reflect.Type, sf reflect.StructField, ft reflect.Type) (kind, kind, *structSchema) {
	switch ft.Kind() {
	case reflect.String:
		return kString, 0, nil
	case reflect.Bool:
		return kBool, 0, nil
	case reflect.Int32:
		return kInt32, 0, nil
	case reflect.Int64:
		return kInt64, 0, nil
	case reflect.Struct:
		return kStruct, 0, schemaOf(ft)
	case reflect.Slice:
		switch et := ft.Elem(); et.Kind() {
		case reflect.Uint8:
			return kBlob, 0, nil
		case reflect.String:
			return kList, kString, nil
		case reflect.Struct:
			return kList, kStruct, schemaOf(et)
		}
	}
	panic(fmt.Sprintf("wire: %s.%s: unsupported type %s", t.Name(), sf.Name, sf.Type))
}

func parseConstraints(t reflect.Type, sf reflect.StructField) (c, each constraints) {
	tag := sf.Tag.Get("aws")
	if tag == "" {
		return
	}
	for _, opt := range strings.Split(tag, ",") {
		target := &c
		if rest, ok := strings.CutPrefix(opt, "each."); ok {
			target, opt = &each, rest
		}
		key, val, _ := strings.Cut(opt, "=")
		switch key {
		case "required":
			target.required = true
		case "sensitive":
			target.sensitive = true
		case "bytes":
			target.bytes = true
		case "id":
			target.id = true
		case "name":
			target.name = true
		case "len":
			target.minLen, target.maxLen = parseBounds(t, sf, val)
		case "range":
			target.minVal, target.maxVal = parseBounds(t, sf, val)
		case "enum":
			if _, ok := enums[val]; !ok {
				panic(fmt.Sprintf("wire: %s.%s: unknown enum %q", t.Name(), sf.Name, val))
			}
			target.enum = val
		case "pattern":
			if _, ok := patterns[val]; !ok {
				panic(fmt.Sprintf("wire: %s.%s: unknown pattern %q", t.Name(), sf.Name, val))
			}
			target.pattern = val
		default:
			panic(fmt.Sprintf("wire: %s.%s: unknown constraint %q", t.Name(), sf.Name, opt))
		}
	}
	return
}

func parseBounds(t reflect.Type, sf reflect.StructField, s string) (*int64, *int64) {
	lo, hi, ok := strings.Cut(s, ":")
	if !ok {
		panic(fmt.Sprintf("wire: %s.%s: bounds %q are not MIN:MAX", t.Name(), sf.Name, s))
	}
	parse := func(x string) *int64 {
		if x == "" {
			return nil
		}
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			panic(fmt.Sprintf("wire: %s.%s: bound %q: %v", t.Name(), sf.Name, x, err))
		}
		return &n
	}
	return parse(lo), parse(hi)
}
