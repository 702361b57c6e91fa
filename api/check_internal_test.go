package api

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
)

// TestEnumFields: the fields checkEnums looks at, per message: a Submit's two enums, a batch's
// list of Submits, none in a Duration; a recursive message (google.protobuf.Value through Struct's
// map and ListValue) keeps every field that can reach its enum.
func TestEnumFields(t *testing.T) {
	names := func(m protoreflect.ProtoMessage) []string {
		var out []string
		for _, fd := range enumFields(m.ProtoReflect().Descriptor()) {
			out = append(out, string(fd.Name()))
		}
		return out
	}
	for _, c := range []struct {
		m    protoreflect.ProtoMessage
		want []string
	}{
		{&smppgwv1.SubmitRequest{}, []string{"data_coding", "registered_delivery"}},
		{&smppgwv1.SubmitBatchRequest{}, []string{"messages"}},
		{&durationpb.Duration{}, nil},
		{&structpb.Value{}, []string{"null_value", "struct_value", "list_value"}},
		{&structpb.Struct{}, []string{"fields"}},
	} {
		if got := names(c.m); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.m.ProtoReflect().Descriptor().FullName(), got, c.want)
		}
	}
	// An undefined enum number deep in the recursion is found and named by its path.
	bad := &structpb.Value{Kind: &structpb.Value_StructValue{StructValue: &structpb.Struct{Fields: map[string]*structpb.Value{
		"a": {Kind: &structpb.Value_ListValue{ListValue: &structpb.ListValue{Values: []*structpb.Value{
			structpb.NewStringValue("ok"), {Kind: &structpb.Value_NullValue{NullValue: 7}}}}}},
	}}}}
	err := checkEnums("", bad.ProtoReflect())
	if err == nil || !strings.HasPrefix(err.Error(), `struct_value.fields["a"].list_value.values[1].null_value`) {
		t.Errorf("checkEnums: %v, want the path of the undefined NullValue", err)
	}
	bad.GetStructValue().GetFields()["a"].GetListValue().GetValues()[1].Kind = &structpb.Value_NullValue{}
	if err := checkEnums("", bad.ProtoReflect()); err != nil {
		t.Errorf("checkEnums on defined values: %v", err)
	}
}
