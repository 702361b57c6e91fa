package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ErrUnknownEnv is wrapped by ApplyEnv's error when a variable with the prefix names no setting.
var ErrUnknownEnv = errors.New("unknown environment override")

// Decode reads YAML into v strictly: an unknown key is an error, so that a misspelt setting is not
// silently ignored. An empty document leaves v as it is.
func Decode(b []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// ApplyEnv sets every scalar setting of the struct v points to that a variable of environ
// (os.Environ's form) names: prefix + the YAML path in upper case, levels joined by "_"
// (smpp.session.window under prefix "SMPPGW_" is SMPPGW_SMPP_SESSION_WINDOW). Values are read as YAML
// scalars are: durations like "30s", booleans true/false, TextUnmarshalers by their text. Lists and
// sections behind a pointer are file-only. A variable with the prefix that names no setting and is
// not in ignore is an error wrapping ErrUnknownEnv, as a misspelt file key is.
func ApplyEnv(v any, prefix string, environ []string, ignore ...string) error {
	env := map[string]string{}
	for _, kv := range environ {
		if k, val, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, prefix) {
			env[k] = val
		}
	}
	if len(env) == 0 {
		return nil
	}
	known := map[string]bool{}
	err := walk(reflect.ValueOf(v).Elem(), nil, false, func(path []string, fv reflect.Value) error {
		name := envName(prefix, path)
		known[name] = true
		s, ok := env[name]
		if !ok {
			return nil
		}
		if err := setScalar(fv, s); err != nil {
			return fmt.Errorf("config: %s=%q: %w", name, s, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	var unknown []string
	for k := range env {
		if !known[k] && !slices.Contains(ignore, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("config: %w %s", ErrUnknownEnv, strings.Join(unknown, ", "))
	}
	return nil
}

// EnvNames lists every variable ApplyEnv reads for a struct of v's type, in field order.
func EnvNames(v any, prefix string) []string {
	var out []string
	_ = walk(reflect.New(reflect.Indirect(reflect.ValueOf(v)).Type()).Elem(), nil, false, func(path []string, _ reflect.Value) error {
		out = append(out, envName(prefix, path))
		return nil
	})
	return out
}

func envName(prefix string, path []string) string {
	return prefix + strings.ToUpper(strings.Join(path, "_"))
}

// Flatten returns the non-zero scalar settings of v (a struct or a pointer to one) under their dotted
// YAML paths ("session.window"), each as YAML writes it ("30s", a TextMarshaler's text). Sections
// behind a non-nil pointer are included; lists and maps are not.
func Flatten(v any) (map[string]string, error) {
	out := map[string]string{}
	err := walk(reflect.Indirect(reflect.ValueOf(v)), nil, true, func(path []string, fv reflect.Value) error {
		if fv.IsZero() {
			return nil
		}
		var n yaml.Node
		if err := n.Encode(fv.Interface()); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(path, "."), err)
		}
		if n.Kind != yaml.ScalarNode {
			return fmt.Errorf("%s: a %s is not a YAML scalar", strings.Join(path, "."), fv.Type())
		}
		out[strings.Join(path, ".")] = n.Value
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Unflatten decodes settings as Flatten wrote them into v, a pointer. Values are plain scalars, so a
// string field gets the text as written ("0123" stays "0123"). Unknown keys are ignored.
func Unflatten(flat map[string]string, v any) error {
	root := &yaml.Node{Kind: yaml.MappingNode}
	child := func(m *yaml.Node, key string) *yaml.Node {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				return m.Content[i+1]
			}
		}
		c := &yaml.Node{Kind: yaml.MappingNode}
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, c)
		return c
	}
	for k, val := range flat {
		parts := strings.Split(k, ".")
		m := root
		for _, p := range parts[:len(parts)-1] {
			m = child(m, p)
			if m.Kind != yaml.MappingNode {
				return fmt.Errorf("option %q conflicts with another", k)
			}
		}
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: parts[len(parts)-1]}, &yaml.Node{Kind: yaml.ScalarNode, Value: val})
	}
	return root.Decode(v)
}

var (
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// walk calls f for every exported scalar field of the struct v with its path of YAML keys (the key
// is the tag's name, else the lower-case field name; ",inline" sections add none). It descends into
// nested structs, and into non-nil pointers to structs when pointers is set; never into lists or maps.
func walk(v reflect.Value, path []string, pointers bool, f func(path []string, v reflect.Value) error) error {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if tag == "-" {
			continue
		}
		fv := v.Field(i)
		if sf.Anonymous && strings.Contains(opts, "inline") {
			if err := walk(fv, path, pointers, f); err != nil {
				return err
			}
			continue
		}
		if tag == "" {
			tag = strings.ToLower(sf.Name)
		}
		p := append(slices.Clip(path), tag)
		if isScalar(fv) {
			if err := f(p, fv); err != nil {
				return err
			}
			continue
		}
		if pointers && fv.Kind() == reflect.Pointer && !fv.IsNil() {
			fv = fv.Elem()
		}
		if fv.Kind() == reflect.Struct {
			if err := walk(fv, p, pointers, f); err != nil {
				return err
			}
		}
	}
	return nil
}

func isScalar(v reflect.Value) bool {
	if reflect.PointerTo(v.Type()).Implements(textUnmarshalerType) {
		return true
	}
	switch v.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

func setScalar(v reflect.Value, s string) error {
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(s))
	}
	if v.Type() == durationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 0, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 0, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil {
			return err
		}
		v.SetFloat(n)
	default:
		return fmt.Errorf("cannot set a %s from the environment", v.Type())
	}
	return nil
}
