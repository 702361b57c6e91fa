package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Requests are checked against the contract before they are read, so that what the API does not
// understand is refused naming the field in the contract's terms (proto field names, with the
// path from the request: "messages[1].data_coding"), instead of being dropped (grpc-gateway
// discards unknown JSON fields and enum names; proto3 keeps any enum number) or reported in
// protojson's words.

// checkJSON checks the JSON request body data against md: every key a field of the message (by
// its JSON or proto name), every value of its field's type, every enum value a name or number
// the enum defines. root names the body in errors ("account" for `body: "account"`; empty for a
// whole request).
func checkJSON(root string, md protoreflect.MessageDescriptor, data []byte) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return badField(nameOr(root, "request body"), "not valid JSON")
	}
	return checkMessage(root, md, v)
}

// fieldError is a request field the contract cannot take, in the contract's terms. It is a plain
// error, not a status, because grpc-gateway formats decoding errors with %v into its own status;
// toStatus maps it to InvalidArgument for the gRPC side.
type fieldError struct {
	field, reason string
}

func (e *fieldError) Error() string { return e.field + ": " + e.reason }

func badField(field, format string, args ...any) error {
	return &fieldError{field: field, reason: fmt.Sprintf(format, args...)}
}

func nameOr(path, whole string) string {
	if path == "" {
		return whole
	}
	return path
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func checkMessage(path string, md protoreflect.MessageDescriptor, v any) error {
	if v == nil {
		return nil // null: the field is unset
	}
	if md.FullName().Parent() == "google.protobuf" {
		return checkWellKnown(path, md, v)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return badField(nameOr(path, "request body"), "must be a JSON object")
	}
	fields := md.Fields()
	set := map[protoreflect.FullName]string{}           // fields and oneofs given, by the key that gave them
	for _, key := range slices.Sorted(maps.Keys(obj)) { // sorted: the same request, the same error
		val := obj[key]
		fd := fields.ByJSONName(key)
		if fd == nil {
			fd = fields.ByTextName(key)
		}
		if fd == nil {
			return badField(join(path, key), "unknown field")
		}
		p := join(path, string(fd.Name()))
		if prev, ok := set[fd.FullName()]; ok {
			return badField(p, "given twice (as %q and %q)", prev, key)
		}
		set[fd.FullName()] = key
		if val == nil {
			continue
		}
		if o := fd.ContainingOneof(); o != nil && !o.IsSynthetic() {
			if prev, ok := set[o.FullName()]; ok {
				return badField(p, "only one of %s may be given (and %q is)", oneofNames(o), prev)
			}
			set[o.FullName()] = key
		}
		if err := checkField(p, fd, val); err != nil {
			return err
		}
	}
	return nil
}

func oneofNames(o protoreflect.OneofDescriptor) string {
	var names []string
	for i := range o.Fields().Len() {
		names = append(names, string(o.Fields().Get(i).Name()))
	}
	return strings.Join(names, ", ")
}

func checkField(path string, fd protoreflect.FieldDescriptor, v any) error {
	switch {
	case fd.IsList():
		list, ok := v.([]any)
		if !ok {
			return badField(path, "must be a list")
		}
		for i, e := range list {
			if err := checkValue(path+"["+strconv.Itoa(i)+"]", fd, e); err != nil {
				return err
			}
		}
		return nil
	case fd.IsMap():
		obj, ok := v.(map[string]any)
		if !ok {
			return badField(path, "must be a JSON object")
		}
		for k, e := range obj {
			p := path + "[" + strconv.Quote(k) + "]"
			if fd.MapKey().Kind() != protoreflect.StringKind {
				if err := checkValue(p, fd.MapKey(), k); err != nil {
					return err
				}
			}
			if err := checkValue(p, fd.MapValue(), e); err != nil {
				return err
			}
		}
		return nil
	}
	return checkValue(path, fd, v)
}

// checkValue checks one value of fd's type (one element of a list).
func checkValue(path string, fd protoreflect.FieldDescriptor, v any) error {
	if v == nil && fd.Message() != nil {
		return nil
	}
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return checkMessage(path, fd.Message(), v)
	case protoreflect.EnumKind:
		return checkEnum(path, fd.Enum(), v)
	case protoreflect.BoolKind:
		if _, ok := v.(bool); !ok {
			return badField(path, "must be true or false")
		}
	case protoreflect.StringKind:
		if _, ok := v.(string); !ok {
			return badField(path, "must be a string")
		}
	case protoreflect.BytesKind:
		s, ok := v.(string)
		if !ok || !isBase64(s) {
			return badField(path, "must be base64 (standard or URL-safe alphabet)")
		}
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		s, ok := numberText(v)
		if _, err := strconv.ParseFloat(s, 64); !ok || err != nil && s != "NaN" && s != "Infinity" && s != "-Infinity" {
			return badField(path, "must be a number")
		}
	default: // the integer kinds
		s, ok := numberText(v)
		lo, hi := intRange(fd.Kind())
		if !ok || !wholeIn(s, lo, hi) {
			return badField(path, "must be a whole number from %s to %s", strconv.FormatFloat(lo, 'f', -1, 64), strconv.FormatFloat(hi, 'f', -1, 64))
		}
	}
	return nil
}

// numberText is the text of a JSON number, or of a string, which protojson takes for numbers too.
func numberText(v any) (string, bool) {
	switch n := v.(type) {
	case json.Number:
		return string(n), true
	case string:
		return n, true
	}
	return "", false
}

func intRange(k protoreflect.Kind) (lo, hi float64) {
	switch k {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return math.MinInt32, math.MaxInt32
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return 0, math.MaxUint32
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return 0, math.MaxUint64
	}
	return math.MinInt64, math.MaxInt64
}

// wholeIn reports whether s is a whole number within [lo, hi] (exponents allowed, as protojson does).
func wholeIn(s string, lo, hi float64) bool {
	if lo < 0 {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return float64(n) >= lo && float64(n) <= hi
		}
	} else if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		return float64(n) <= hi
	}
	f, err := strconv.ParseFloat(s, 64)
	return err == nil && f == math.Trunc(f) && f >= lo && f <= hi
}

func isBase64(s string) bool {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if _, err := enc.DecodeString(s); err == nil {
			return true
		}
	}
	return false
}

// checkEnum accepts a value's full name or its number, as protojson does, and nothing else: not a
// name without its prefix ("FINAL"), not a number the enum does not define.
func checkEnum(path string, ed protoreflect.EnumDescriptor, v any) error {
	if ed.FullName() == "google.protobuf.NullValue" {
		return nil
	}
	switch x := v.(type) {
	case string:
		if ed.Values().ByName(protoreflect.Name(x)) != nil {
			return nil
		}
		return unknownEnum(path, ed, strconv.Quote(x))
	case json.Number:
		n, err := strconv.ParseInt(string(x), 10, 32)
		if err == nil && ed.Values().ByNumber(protoreflect.EnumNumber(n)) != nil {
			return nil
		}
		return unknownEnum(path, ed, string(x))
	}
	return unknownEnum(path, ed, "")
}

func unknownEnum(path string, ed protoreflect.EnumDescriptor, got string) error {
	var names []string
	for i := range ed.Values().Len() {
		names = append(names, string(ed.Values().Get(i).Name()))
	}
	if got == "" {
		return badField(path, "must be one of %s", strings.Join(names, ", "))
	}
	return badField(path, "unknown value %s; one of %s", got, strings.Join(names, ", "))
}

// wellKnownHint says what a well-known type looks like in JSON.
var wellKnownHint = map[protoreflect.FullName]string{
	"google.protobuf.Timestamp": "a timestamp in RFC 3339 form, like 2025-01-31T12:00:00Z",
	"google.protobuf.Duration":  "a duration in seconds with an s suffix, like 30s or 1.5s",
	"google.protobuf.FieldMask": "field names separated by commas, like maxBinds,password",
}

// checkWellKnown checks a value of a google.protobuf type by letting protojson read it alone.
func checkWellKnown(path string, md protoreflect.MessageDescriptor, v any) error {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName())
	if err != nil {
		return nil // not linked in, so not in our requests; protojson decides
	}
	raw, err := json.Marshal(v)
	if err == nil {
		err = protojson.Unmarshal(raw, mt.New().Interface())
	}
	if err == nil {
		return nil
	}
	if hint, ok := wellKnownHint[md.FullName()]; ok {
		return badField(nameOr(path, "request body"), "must be %s", hint)
	}
	return badField(nameOr(path, "request body"), "not a valid %s", md.Name())
}

// descriptorOf returns the message descriptor of v: a proto.Message, or a pointer to one (which
// grpc-gateway passes for a body that is one field of the request).
func descriptorOf(v any) (protoreflect.MessageDescriptor, bool) {
	if m, ok := v.(proto.Message); ok {
		return m.ProtoReflect().Descriptor(), true
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && rv.Type().Elem().Kind() == reflect.Pointer {
		if m, ok := reflect.Zero(rv.Type().Elem()).Interface().(proto.Message); ok {
			return m.ProtoReflect().Descriptor(), true
		}
	}
	return nil, false
}

// checkQuery checks query parameters against the request message md as checkJSON checks a body:
// each name a field path (JSON or proto names, dotted) to a value field, each value of its type.
// Names that filter holds (bound by the path or the body) are grpc-gateway's to ignore.
func checkQuery(md protoreflect.MessageDescriptor, values url.Values, filter *utilities.DoubleArray) error {
	for key, vals := range values {
		name, mapKey := key, ""
		if i := strings.IndexByte(key, '['); i > 0 && strings.HasSuffix(key, "]") {
			name, mapKey = key[:i], key[i+1:len(key)-1]
		}
		var protoPath []string
		m := md
		var fd protoreflect.FieldDescriptor
		for _, part := range strings.Split(name, ".") {
			if m == nil {
				return badField(key, "unknown query parameter")
			}
			fd = m.Fields().ByJSONName(part)
			if fd == nil {
				fd = m.Fields().ByTextName(part)
			}
			if fd == nil {
				return badField(key, "unknown query parameter")
			}
			protoPath = append(protoPath, string(fd.Name()))
			m = nil
			if fd.Message() != nil && !fd.IsMap() && fd.Message().FullName().Parent() != "google.protobuf" {
				m = fd.Message()
			}
		}
		if filter != nil && filter.HasCommonPrefix(protoPath) {
			continue
		}
		path := strings.Join(protoPath, ".")
		switch {
		case m != nil:
			return badField(path, "is a message: give its fields, like %s.<field>", key)
		case mapKey != "" && !fd.IsMap():
			return badField(path, "not a map")
		case fd.IsMap():
			if mapKey == "" {
				return badField(path, "a map: give each entry as %s[key]=value", key)
			}
			fd = fd.MapValue()
			path += "[" + strconv.Quote(mapKey) + "]"
		case len(vals) > 1 && !fd.IsList():
			return badField(path, "given more than once")
		}
		for _, s := range vals {
			if err := checkValue(path, fd, queryValue(fd, s)); err != nil {
				return err
			}
		}
	}
	return nil
}

// queryValue is what a query parameter's text stands for in JSON, for checkValue.
func queryValue(fd protoreflect.FieldDescriptor, s string) any {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		if b, err := strconv.ParseBool(s); err == nil {
			return b
		}
		return s
	case protoreflect.EnumKind:
		if _, err := strconv.ParseInt(s, 10, 32); err == nil {
			return json.Number(s)
		}
	}
	return s
}

// checkEnums refuses an enum number the contract does not define anywhere in m (gRPC callers can
// send any: proto3 enums are open). path prefixes the field names in the error. It looks only at
// the fields that may hold an enum (enumFields), so a Submit costs a look at its two enums.
func checkEnums(path string, m protoreflect.Message) error {
	for _, fd := range enumFields(m.Descriptor()) {
		if !m.Has(fd) {
			continue // unset, or an enum at 0, which every enum defines
		}
		v := m.Get(fd)
		p := join(path, string(fd.Name()))
		switch {
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				if err := checkEnumValue(p+"["+strconv.Itoa(i)+"]", fd, l.Get(i)); err != nil {
					return err
				}
			}
		case fd.IsMap():
			var err error
			v.Map().Range(func(k protoreflect.MapKey, e protoreflect.Value) bool {
				err = checkEnumValue(p+"["+strconv.Quote(k.String())+"]", fd.MapValue(), e)
				return err == nil
			})
			if err != nil {
				return err
			}
		default:
			if err := checkEnumValue(p, fd, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// enumFieldsOf caches enumFields by message.
var enumFieldsOf sync.Map // protoreflect.FullName -> []protoreflect.FieldDescriptor

// enumFields lists the fields of md that may hold an enum: enums, and messages (single, in lists or
// as map values) with such fields of their own, in declaration order.
func enumFields(md protoreflect.MessageDescriptor) []protoreflect.FieldDescriptor {
	if v, ok := enumFieldsOf.Load(md.FullName()); ok {
		return v.([]protoreflect.FieldDescriptor)
	}
	out := findEnumFields(md, map[protoreflect.FullName]bool{})
	enumFieldsOf.Store(md.FullName(), out)
	return out
}

// findEnumFields is enumFields uncached; open holds the messages being looked at further up, whose
// fields are kept (a recursive message may hold an enum through itself).
func findEnumFields(md protoreflect.MessageDescriptor, open map[protoreflect.FullName]bool) []protoreflect.FieldDescriptor {
	open[md.FullName()] = true
	defer delete(open, md.FullName())
	var out []protoreflect.FieldDescriptor
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		vd := fd
		if fd.IsMap() {
			vd = fd.MapValue()
		}
		switch vd.Kind() {
		case protoreflect.EnumKind:
			out = append(out, fd)
		case protoreflect.MessageKind, protoreflect.GroupKind:
			if open[vd.Message().FullName()] || len(findEnumFields(vd.Message(), open)) > 0 {
				out = append(out, fd)
			}
		}
	}
	return out
}

func checkEnumValue(path string, fd protoreflect.FieldDescriptor, v protoreflect.Value) error {
	switch fd.Kind() {
	case protoreflect.EnumKind:
		if fd.Enum().Values().ByNumber(v.Enum()) == nil {
			return unknownEnum(path, fd.Enum(), strconv.Itoa(int(v.Enum())))
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return checkEnums(path, v.Message())
	}
	return nil
}
