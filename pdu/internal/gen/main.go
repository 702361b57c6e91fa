// Command gen writes pdu/zpdu.go and pdu/ztlv.go from the tables below: the SMPP 3.4 PDU layouts
// (section 4) and optional parameters (section 5.3.2). Run it with `go generate ./pdu`.
//
// The tables are the one place a field layout is written down; the generated code is plain Go with
// no reflection and no maps, so the hot path stays allocation-free.
package main

import (
	"bytes"
	"fmt"
	"go/format"
	"log"
	"os"
	"strings"
)

type kind int

const (
	u8     kind = iota // Integer, 1 octet
	cstr               // C-Octet String; max counts the terminating NUL, as the spec's sizes do
	sm                 // sm_length followed by short_message
	dests              // number_of_dests followed by dest_address entries (submit_multi)
	unsucc             // no_unsuccess followed by unsuccess_sme entries (submit_multi_resp)
)

type field struct {
	Go, Spec string
	Kind     kind
	Max      int
	Status   string // command status answered when the field is bad
}

type pduSpec struct {
	Name, Spec, Section string
	ID                  uint32
	Fields              []field
	TLVs                bool
	Doc                 string
}

func f8(goName, spec string) field { return field{Go: goName, Spec: spec, Kind: u8} }
func fc(goName, spec string, max int, status string) field {
	return field{Go: goName, Spec: spec, Kind: cstr, Max: max, Status: status}
}

var (
	bindFields = []field{
		fc("SystemID", "system_id", 16, "ESME_RINVSYSID"),
		fc("Password", "password", 9, "ESME_RINVPASWD"),
		fc("SystemType", "system_type", 13, "ESME_RINVSYSTYP"),
		f8("InterfaceVersion", "interface_version"),
		f8("AddrTON", "addr_ton"),
		f8("AddrNPI", "addr_npi"),
		fc("AddressRange", "address_range", 41, "ESME_RINVPARLEN"),
	}
	bindRespFields = []field{fc("SystemID", "system_id", 16, "ESME_RINVSYSID")}
	smFields       = []field{
		fc("ServiceType", "service_type", 6, "ESME_RINVSERTYP"),
		f8("SourceAddrTON", "source_addr_ton"),
		f8("SourceAddrNPI", "source_addr_npi"),
		fc("SourceAddr", "source_addr", 21, "ESME_RINVSRCADR"),
		f8("DestAddrTON", "dest_addr_ton"),
		f8("DestAddrNPI", "dest_addr_npi"),
		fc("DestinationAddr", "destination_addr", 21, "ESME_RINVDSTADR"),
		f8("EsmClass", "esm_class"),
		f8("ProtocolID", "protocol_id"),
		f8("PriorityFlag", "priority_flag"),
		fc("ScheduleDeliveryTime", "schedule_delivery_time", 17, "ESME_RINVSCHED"),
		fc("ValidityPeriod", "validity_period", 17, "ESME_RINVEXPIRY"),
		f8("RegisteredDelivery", "registered_delivery"),
		f8("ReplaceIfPresentFlag", "replace_if_present_flag"),
		f8("DataCoding", "data_coding"),
		f8("SMDefaultMsgID", "sm_default_msg_id"),
		{Go: "ShortMessage", Spec: "short_message", Kind: sm, Max: 254, Status: "ESME_RINVMSGLEN"},
	}
	multiFields = []field{
		fc("ServiceType", "service_type", 6, "ESME_RINVSERTYP"),
		f8("SourceAddrTON", "source_addr_ton"),
		f8("SourceAddrNPI", "source_addr_npi"),
		fc("SourceAddr", "source_addr", 21, "ESME_RINVSRCADR"),
		{Go: "DestAddresses", Spec: "dest_address", Kind: dests, Max: 254, Status: "ESME_RINVNUMDESTS"},
		f8("EsmClass", "esm_class"),
		f8("ProtocolID", "protocol_id"),
		f8("PriorityFlag", "priority_flag"),
		fc("ScheduleDeliveryTime", "schedule_delivery_time", 17, "ESME_RINVSCHED"),
		fc("ValidityPeriod", "validity_period", 17, "ESME_RINVEXPIRY"),
		f8("RegisteredDelivery", "registered_delivery"),
		f8("ReplaceIfPresentFlag", "replace_if_present_flag"),
		f8("DataCoding", "data_coding"),
		f8("SMDefaultMsgID", "sm_default_msg_id"),
		{Go: "ShortMessage", Spec: "short_message", Kind: sm, Max: 254, Status: "ESME_RINVMSGLEN"},
	}
	msgIDField = fc("MessageID", "message_id", 65, "ESME_RINVMSGID")
)

var pdus = []pduSpec{
	{Name: "GenericNack", Spec: "generic_nack", Section: "4.3.1", ID: 0x80000000,
		Doc: "is the response to a PDU that could not be read: unknown command_id, bad length or undecodable body."},
	{Name: "BindReceiver", Spec: "bind_receiver", Section: "4.1.3", ID: 0x00000001, Fields: bindFields,
		Doc: "registers an ESME that receives messages only."},
	{Name: "BindReceiverResp", Spec: "bind_receiver_resp", Section: "4.1.4", ID: 0x80000001, Fields: bindRespFields, TLVs: true},
	{Name: "BindTransmitter", Spec: "bind_transmitter", Section: "4.1.1", ID: 0x00000002, Fields: bindFields,
		Doc: "registers an ESME that submits messages only."},
	{Name: "BindTransmitterResp", Spec: "bind_transmitter_resp", Section: "4.1.2", ID: 0x80000002, Fields: bindRespFields, TLVs: true},
	{Name: "QuerySM", Spec: "query_sm", Section: "4.8.1", ID: 0x00000003, Fields: []field{
		msgIDField, f8("SourceAddrTON", "source_addr_ton"), f8("SourceAddrNPI", "source_addr_npi"),
		fc("SourceAddr", "source_addr", 21, "ESME_RINVSRCADR"),
	}, Doc: "asks the state of a previously submitted message."},
	{Name: "QuerySMResp", Spec: "query_sm_resp", Section: "4.8.2", ID: 0x80000003, Fields: []field{
		msgIDField, fc("FinalDate", "final_date", 17, "ESME_RINVPARLEN"),
		{Go: "MessageState", Spec: "message_state", Kind: u8}, f8("ErrorCode", "error_code"),
	}},
	{Name: "SubmitSM", Spec: "submit_sm", Section: "4.4.1", ID: 0x00000004, Fields: smFields, TLVs: true,
		Doc: "submits a short message to the SMSC for one destination."},
	// SMPP 5.0 lets submit_sm_resp and deliver_sm_resp carry TLVs; 3.4 peers send none. They are read and
	// kept when present rather than refused, as Kannel and cloudhopper do.
	{Name: "SubmitSMResp", Spec: "submit_sm_resp", Section: "4.4.2", ID: 0x80000004, Fields: []field{msgIDField}, TLVs: true},
	{Name: "DeliverSM", Spec: "deliver_sm", Section: "4.6.1", ID: 0x00000005, Fields: smFields, TLVs: true,
		Doc: "delivers a short message (MO or a delivery receipt) from the SMSC to an ESME. Its layout is submit_sm's."},
	{Name: "DeliverSMResp", Spec: "deliver_sm_resp", Section: "4.6.2", ID: 0x80000005, Fields: []field{msgIDField}, TLVs: true},
	{Name: "Unbind", Spec: "unbind", Section: "4.2.1", ID: 0x00000006, Doc: "ends a bind."},
	{Name: "UnbindResp", Spec: "unbind_resp", Section: "4.2.2", ID: 0x80000006},
	{Name: "ReplaceSM", Spec: "replace_sm", Section: "4.10.1", ID: 0x00000007, Fields: []field{
		msgIDField, f8("SourceAddrTON", "source_addr_ton"), f8("SourceAddrNPI", "source_addr_npi"),
		fc("SourceAddr", "source_addr", 21, "ESME_RINVSRCADR"),
		fc("ScheduleDeliveryTime", "schedule_delivery_time", 17, "ESME_RINVSCHED"),
		fc("ValidityPeriod", "validity_period", 17, "ESME_RINVEXPIRY"),
		f8("RegisteredDelivery", "registered_delivery"), f8("SMDefaultMsgID", "sm_default_msg_id"),
		{Go: "ShortMessage", Spec: "short_message", Kind: sm, Max: 254, Status: "ESME_RINVMSGLEN"},
	}, Doc: "replaces a previously submitted message that is still pending delivery."},
	{Name: "ReplaceSMResp", Spec: "replace_sm_resp", Section: "4.10.2", ID: 0x80000007},
	{Name: "CancelSM", Spec: "cancel_sm", Section: "4.9.1", ID: 0x00000008, Fields: []field{
		fc("ServiceType", "service_type", 6, "ESME_RINVSERTYP"), msgIDField,
		f8("SourceAddrTON", "source_addr_ton"), f8("SourceAddrNPI", "source_addr_npi"),
		fc("SourceAddr", "source_addr", 21, "ESME_RINVSRCADR"),
		f8("DestAddrTON", "dest_addr_ton"), f8("DestAddrNPI", "dest_addr_npi"),
		fc("DestinationAddr", "destination_addr", 21, "ESME_RINVDSTADR"),
	}, Doc: "cancels one or more previously submitted messages that are still pending delivery."},
	{Name: "CancelSMResp", Spec: "cancel_sm_resp", Section: "4.9.2", ID: 0x80000008},
	{Name: "BindTransceiver", Spec: "bind_transceiver", Section: "4.1.5", ID: 0x00000009, Fields: bindFields,
		Doc: "registers an ESME that both submits and receives messages."},
	{Name: "BindTransceiverResp", Spec: "bind_transceiver_resp", Section: "4.1.6", ID: 0x80000009, Fields: bindRespFields, TLVs: true},
	{Name: "Outbind", Spec: "outbind", Section: "4.1.7", ID: 0x0000000B, Fields: []field{
		fc("SystemID", "system_id", 16, "ESME_RINVSYSID"), fc("Password", "password", 9, "ESME_RINVPASWD"),
	}, Doc: "asks an ESME, from the SMSC, to bind_receiver on the same connection."},
	{Name: "EnquireLink", Spec: "enquire_link", Section: "4.11.1", ID: 0x00000015, Doc: "checks that the peer is alive."},
	{Name: "EnquireLinkResp", Spec: "enquire_link_resp", Section: "4.11.2", ID: 0x80000015},
	{Name: "SubmitMulti", Spec: "submit_multi", Section: "4.5.1", ID: 0x00000021, Fields: multiFields, TLVs: true,
		Doc: "submits one short message to several SME addresses and distribution lists."},
	{Name: "SubmitMultiResp", Spec: "submit_multi_resp", Section: "4.5.2", ID: 0x80000021, Fields: []field{
		msgIDField, {Go: "UnsuccessSMEs", Spec: "unsuccess_sme", Kind: unsucc, Max: 254, Status: "ESME_RINVNUMDESTS"},
	}},
	{Name: "AlertNotification", Spec: "alert_notification", Section: "4.12.1", ID: 0x00000102, Fields: []field{
		f8("SourceAddrTON", "source_addr_ton"), f8("SourceAddrNPI", "source_addr_npi"),
		fc("SourceAddr", "source_addr", 65, "ESME_RINVSRCADR"),
		f8("EsmeAddrTON", "esme_addr_ton"), f8("EsmeAddrNPI", "esme_addr_npi"),
		fc("EsmeAddr", "esme_addr", 65, "ESME_RINVDSTADR"),
	}, TLVs: true, Doc: "tells an ESME that a mobile it asked about (set_dpf) has become available."},
	{Name: "DataSM", Spec: "data_sm", Section: "4.7.1", ID: 0x00000103, Fields: []field{
		fc("ServiceType", "service_type", 6, "ESME_RINVSERTYP"),
		f8("SourceAddrTON", "source_addr_ton"), f8("SourceAddrNPI", "source_addr_npi"),
		fc("SourceAddr", "source_addr", 65, "ESME_RINVSRCADR"),
		f8("DestAddrTON", "dest_addr_ton"), f8("DestAddrNPI", "dest_addr_npi"),
		fc("DestinationAddr", "destination_addr", 65, "ESME_RINVDSTADR"),
		f8("EsmClass", "esm_class"), f8("RegisteredDelivery", "registered_delivery"), f8("DataCoding", "data_coding"),
	}, TLVs: true, Doc: "transfers data in either direction; the payload travels in the message_payload TLV."},
	{Name: "DataSMResp", Spec: "data_sm_resp", Section: "4.7.2", ID: 0x80000103, Fields: []field{msgIDField}, TLVs: true},
}

type tkind int

const (
	tInt    tkind = iota // Integer of Size octets
	tCStr                // C-Octet String of at most Max octets with its NUL
	tOctets              // Octet String of Min..Max octets
	tFlag                // no value: presence is the information
	tNetErr              // network_error_code: network type (1 octet) + error code (2 octets)
)

type tlvSpec struct {
	Go, Spec, Section string
	Tag               uint16
	Kind              tkind
	Size, Min, Max    int    // Size for tInt; Min/Max for strings
	Type              string // Go type of an integer accessor, when not the plain unsigned type
}

func ti(goName, spec string, tag uint16, size int, sec string) tlvSpec {
	return tlvSpec{Go: goName, Spec: spec, Tag: tag, Kind: tInt, Size: size, Section: sec}
}

var tlvs = []tlvSpec{
	ti("DestAddrSubunit", "dest_addr_subunit", 0x0005, 1, "5.3.2.1"),
	ti("DestNetworkType", "dest_network_type", 0x0006, 1, "5.3.2.3"),
	ti("DestBearerType", "dest_bearer_type", 0x0007, 1, "5.3.2.5"),
	ti("DestTelematicsID", "dest_telematics_id", 0x0008, 2, "5.3.2.7"),
	ti("SourceAddrSubunit", "source_addr_subunit", 0x000D, 1, "5.3.2.2"),
	ti("SourceNetworkType", "source_network_type", 0x000E, 1, "5.3.2.4"),
	ti("SourceBearerType", "source_bearer_type", 0x000F, 1, "5.3.2.6"),
	// The 3.4 text gives source_telematics_id a length of 2 in one place and 1 in another; peers send
	// either, so the accessor reads a 1- or 2-octet integer and writes 2 octets like dest_telematics_id.
	{Go: "SourceTelematicsID", Spec: "source_telematics_id", Tag: 0x0010, Kind: tInt, Size: 2, Min: 1, Section: "5.3.2.8"},
	ti("QosTimeToLive", "qos_time_to_live", 0x0017, 4, "5.3.2.9"),
	ti("PayloadType", "payload_type", 0x0019, 1, "5.3.2.10"),
	{Go: "AdditionalStatusInfoText", Spec: "additional_status_info_text", Tag: 0x001D, Kind: tCStr, Max: 256, Section: "5.3.2.11"},
	{Go: "ReceiptedMessageID", Spec: "receipted_message_id", Tag: 0x001E, Kind: tCStr, Max: 65, Section: "5.3.2.12"},
	ti("MsMsgWaitFacilities", "ms_msg_wait_facilities", 0x0030, 1, "5.3.2.13"),
	ti("PrivacyIndicator", "privacy_indicator", 0x0201, 1, "5.3.2.14"),
	{Go: "SourceSubaddress", Spec: "source_subaddress", Tag: 0x0202, Kind: tOctets, Min: 2, Max: 23, Section: "5.3.2.15"},
	{Go: "DestSubaddress", Spec: "dest_subaddress", Tag: 0x0203, Kind: tOctets, Min: 2, Max: 23, Section: "5.3.2.16"},
	ti("UserMessageReference", "user_message_reference", 0x0204, 2, "5.3.2.17"),
	ti("UserResponseCode", "user_response_code", 0x0205, 1, "5.3.2.18"),
	ti("SourcePort", "source_port", 0x020A, 2, "5.3.2.20"),
	ti("DestinationPort", "destination_port", 0x020B, 2, "5.3.2.21"),
	ti("SARMsgRefNum", "sar_msg_ref_num", 0x020C, 2, "5.3.2.22"),
	ti("LanguageIndicator", "language_indicator", 0x020D, 1, "5.3.2.19"),
	ti("SARTotalSegments", "sar_total_segments", 0x020E, 1, "5.3.2.23"),
	ti("SARSegmentSeqnum", "sar_segment_seqnum", 0x020F, 1, "5.3.2.24"),
	ti("SCInterfaceVersion", "sc_interface_version", 0x0210, 1, "5.3.2.25"),
	ti("CallbackNumPresInd", "callback_num_pres_ind", 0x0302, 1, "5.3.2.37"),
	{Go: "CallbackNumAtag", Spec: "callback_num_atag", Tag: 0x0303, Kind: tOctets, Max: 65, Section: "5.3.2.38"},
	ti("NumberOfMessages", "number_of_messages", 0x0304, 1, "5.3.2.39"),
	{Go: "CallbackNum", Spec: "callback_num", Tag: 0x0381, Kind: tOctets, Min: 4, Max: 19, Section: "5.3.2.36"},
	ti("DPFResult", "dpf_result", 0x0420, 1, "5.3.2.28"),
	ti("SetDPF", "set_dpf", 0x0421, 1, "5.3.2.29"),
	ti("MsAvailabilityStatus", "ms_availability_status", 0x0422, 1, "5.3.2.30"),
	{Go: "NetworkErrorCode", Spec: "network_error_code", Tag: 0x0423, Kind: tNetErr, Section: "5.3.2.31"},
	{Go: "MessagePayload", Spec: "message_payload", Tag: 0x0424, Kind: tOctets, Max: 0xFFFF, Section: "5.3.2.32"},
	ti("DeliveryFailureReason", "delivery_failure_reason", 0x0425, 1, "5.3.2.33"),
	ti("MoreMessagesToSend", "more_messages_to_send", 0x0426, 1, "5.3.2.34"),
	{Go: "MessageState", Spec: "message_state", Tag: 0x0427, Kind: tInt, Size: 1, Type: "MessageState", Section: "5.3.2.35"},
	ti("UssdServiceOp", "ussd_service_op", 0x0501, 1, "5.3.2.44"),
	ti("DisplayTime", "display_time", 0x1201, 1, "5.3.2.26"),
	ti("SmsSignal", "sms_signal", 0x1203, 2, "5.3.2.40"),
	ti("MsValidity", "ms_validity", 0x1204, 1, "5.3.2.27"),
	{Go: "AlertOnMessageDelivery", Spec: "alert_on_message_delivery", Tag: 0x130C, Kind: tFlag, Section: "5.3.2.41"},
	ti("ItsReplyType", "its_reply_type", 0x1380, 1, "5.3.2.42"),
	ti("ItsSessionInfo", "its_session_info", 0x1383, 2, "5.3.2.43"),
}

func main() {
	write("zpdu.go", genPDUs())
	write("ztlv.go", genTLVs())
}

func write(name string, src []byte) {
	out, err := format.Source(src)
	if err != nil {
		log.Fatalf("gen: %s: %v\n%s", name, err, src)
	}
	if err := os.WriteFile(name, out, 0o644); err != nil {
		log.Fatal(err)
	}
}

const header = "// Code generated by pdu/internal/gen; DO NOT EDIT.\n\npackage pdu\n\n"

func goType(f field) string {
	switch f.Kind {
	case u8:
		if f.Go == "MessageState" {
			return "MessageState"
		}
		return "uint8"
	case cstr:
		return "string"
	case sm:
		return "[]byte"
	case dests:
		return "[]DestAddress"
	case unsucc:
		return "[]UnsuccessSME"
	}
	panic("kind")
}

func genPDUs() []byte {
	var b bytes.Buffer
	b.WriteString(header)
	b.WriteString("// Command ids of SMPP 3.4 section 5.1.2.\nconst (\n")
	for _, p := range pdus {
		fmt.Fprintf(&b, "\t%sID CommandID = 0x%08X // %s\n", p.Name, p.ID, p.Spec)
	}
	b.WriteString(")\n\n")
	b.WriteString("// String returns the specification's name of the command (\"submit_sm\"), or its hex value when unknown.\n")
	b.WriteString("func (c CommandID) String() string {\n\tswitch c {\n")
	for _, p := range pdus {
		fmt.Fprintf(&b, "\tcase %sID:\n\t\treturn %q\n", p.Name, p.Spec)
	}
	b.WriteString("\t}\n\treturn unknownCommandName(c)\n}\n\n")
	b.WriteString("// New returns an empty body for the command id, or nil when the id is not an SMPP 3.4 command.\n")
	b.WriteString("func New(id CommandID) Body {\n\tswitch id {\n")
	for _, p := range pdus {
		fmt.Fprintf(&b, "\tcase %sID:\n\t\treturn new(%s)\n", p.Name, p.Name)
	}
	b.WriteString("\t}\n\treturn nil\n}\n\n")

	for _, p := range pdus {
		doc := p.Doc
		if doc == "" {
			doc = "is the response to " + strings.TrimSuffix(p.Spec, "_resp") + "."
		}
		fmt.Fprintf(&b, "// %s %s\n// SMPP 3.4 section %s.\ntype %s struct {\n", p.Name, doc, p.Section, p.Name)
		for _, f := range p.Fields {
			switch f.Kind {
			case cstr:
				fmt.Fprintf(&b, "\t%s %s // %s, at most %d octets\n", f.Go, goType(f), f.Spec, f.Max-1)
			case sm:
				fmt.Fprintf(&b, "\t%s %s // %s, at most %d octets (sm_length is derived)\n", f.Go, goType(f), f.Spec, f.Max)
			case dests:
				fmt.Fprintf(&b, "\t%s %s // %s entries, at most %d (number_of_dests is derived)\n", f.Go, goType(f), f.Spec, f.Max)
			case unsucc:
				fmt.Fprintf(&b, "\t%s %s // %s entries, at most %d (no_unsuccess is derived)\n", f.Go, goType(f), f.Spec, f.Max)
			default:
				fmt.Fprintf(&b, "\t%s %s // %s\n", f.Go, goType(f), f.Spec)
			}
		}
		if p.TLVs {
			b.WriteString("\tOptions Options // optional parameters (TLVs), unknown ones kept byte for byte\n")
		}
		b.WriteString("}\n\n")
		fmt.Fprintf(&b, "// CommandID returns %sID.\nfunc (*%s) CommandID() CommandID { return %sID }\n\n", p.Name, p.Name, p.Name)

		fmt.Fprintf(&b, "// AppendBody appends the encoded body (without the header) to dst.\n")
		if len(p.Fields) == 0 && !p.TLVs {
			fmt.Fprintf(&b, "func (*%s) AppendBody(dst []byte) ([]byte, error) { return dst, nil }\n\n", p.Name)
			fmt.Fprintf(&b, "// Check reports the first field AppendBody would refuse: none, the body is empty.\n")
			fmt.Fprintf(&b, "func (*%s) Check() error { return nil }\n\n", p.Name)
		} else {
			fmt.Fprintf(&b, "func (p *%s) AppendBody(dst []byte) ([]byte, error) {\n\te := encoder{b: dst, cmd: %sID}\n\tp.encode(&e)\n\treturn e.b, e.err\n}\n\n", p.Name, p.Name)
			fmt.Fprintf(&b, "// Check reports the first field AppendBody would refuse, as a *FieldError, without encoding.\n")
			fmt.Fprintf(&b, "func (p *%s) Check() error {\n\te := encoder{cmd: %sID, dry: true}\n\tp.encode(&e)\n\treturn e.err\n}\n\n", p.Name, p.Name)
			fmt.Fprintf(&b, "func (p *%s) encode(e *encoder) {\n", p.Name)
			for _, f := range p.Fields {
				switch f.Kind {
				case u8:
					fmt.Fprintf(&b, "\te.u8(uint8(p.%s))\n", f.Go)
				case cstr:
					fmt.Fprintf(&b, "\te.cstring(p.%s, %d, %q, %s)\n", f.Go, f.Max, f.Spec, f.Status)
				case sm:
					fmt.Fprintf(&b, "\te.shortMessage(p.%s, %d)\n", f.Go, f.Max)
				case dests:
					fmt.Fprintf(&b, "\te.destAddresses(p.%s)\n", f.Go)
				case unsucc:
					fmt.Fprintf(&b, "\te.unsuccessSMEs(p.%s)\n", f.Go)
				default:
					log.Fatalf("gen: %s.%s: no encoder for kind %d", p.Name, f.Go, f.Kind)
				}
			}
			if p.TLVs {
				b.WriteString("\te.options(p.Options)\n")
			}
			b.WriteString("}\n\n")
		}

		fmt.Fprintf(&b, "// DecodeBody reads the body (without the header) from src. The strings and byte slices of p\n// alias src: src must not be modified while p is in use.\n")
		if len(p.Fields) == 0 && !p.TLVs {
			fmt.Fprintf(&b, "func (*%s) DecodeBody(src []byte) error { return emptyBody(%sID, src) }\n\n", p.Name, p.Name)
			continue
		}
		fmt.Fprintf(&b, "func (p *%s) DecodeBody(src []byte) error {\n\td := decoder{b: src, cmd: %sID}\n", p.Name, p.Name)
		for _, f := range p.Fields {
			switch f.Kind {
			case u8:
				if goType(f) != "uint8" {
					fmt.Fprintf(&b, "\tp.%s = %s(d.u8(%q))\n", f.Go, goType(f), f.Spec)
				} else {
					fmt.Fprintf(&b, "\tp.%s = d.u8(%q)\n", f.Go, f.Spec)
				}
			case cstr:
				fmt.Fprintf(&b, "\tp.%s = d.cstring(%d, %q, %s)\n", f.Go, f.Max, f.Spec, f.Status)
			case sm:
				fmt.Fprintf(&b, "\tp.%s = d.shortMessage(%d)\n", f.Go, f.Max)
			case dests:
				fmt.Fprintf(&b, "\tp.%s = d.destAddresses()\n", f.Go)
			case unsucc:
				fmt.Fprintf(&b, "\tp.%s = d.unsuccessSMEs()\n", f.Go)
			}
		}
		if p.TLVs {
			b.WriteString("\tp.Options = d.options()\n")
		}
		b.WriteString("\treturn d.finish()\n}\n\n")
	}
	return b.Bytes()
}

func intType(t tlvSpec) string {
	if t.Type != "" {
		return t.Type
	}
	return map[int]string{1: "uint8", 2: "uint16", 4: "uint32"}[t.Size]
}

func genTLVs() []byte {
	var b bytes.Buffer
	b.WriteString(header)
	b.WriteString("// Optional parameter tags of SMPP 3.4 section 5.3.2.\nconst (\n")
	for _, t := range tlvs {
		fmt.Fprintf(&b, "\tTag%s Tag = 0x%04X // %s\n", t.Go, t.Tag, t.Spec)
	}
	b.WriteString(")\n\n")
	b.WriteString("// String returns the specification's name of the tag (\"sar_msg_ref_num\"), or its hex value when unknown.\n")
	b.WriteString("func (t Tag) String() string {\n\tswitch t {\n")
	for _, t := range tlvs {
		fmt.Fprintf(&b, "\tcase Tag%s:\n\t\treturn %q\n", t.Go, t.Spec)
	}
	b.WriteString("\t}\n\treturn unknownTagName(t)\n}\n\n")
	b.WriteString("// tagLengths gives the value lengths SMPP 3.4 allows for a known tag; ok is false for unknown tags,\n// which are carried without checks.\n")
	b.WriteString("func tagLengths(t Tag) (min, max int, ok bool) {\n\tswitch t {\n")
	for _, t := range tlvs {
		min, max := t.Min, t.Max
		switch t.Kind {
		case tInt:
			if min == 0 {
				min = t.Size
			}
			max = t.Size
		case tCStr:
			min = 1
		case tFlag:
			min, max = 0, 0
		case tNetErr:
			min, max = 3, 3
		}
		fmt.Fprintf(&b, "\tcase Tag%s:\n\t\treturn %d, %d, true\n", t.Go, min, max)
	}
	b.WriteString("\t}\n\treturn 0, 0xFFFF, false\n}\n\n")

	for _, t := range tlvs {
		name := t.Go
		switch t.Kind {
		case tInt:
			typ := intType(t)
			fmt.Fprintf(&b, "// %s returns the %s TLV (section %s) and whether it is present.\n", name, t.Spec, t.Section)
			fmt.Fprintf(&b, "func (o Options) %s() (%s, bool) {\n\tv, ok := o.Uint(Tag%s)\n\treturn %s(v), ok\n}\n\n", name, typ, name, typ)
			fmt.Fprintf(&b, "// Set%s sets the %s TLV.\n", name, t.Spec)
			fmt.Fprintf(&b, "func (o *Options) Set%s(v %s) { o.SetUint(Tag%s, %d, uint32(v)) }\n\n", name, typ, name, t.Size)
		case tCStr:
			fmt.Fprintf(&b, "// %s returns the %s TLV (section %s) without its NUL, and whether it is present.\n", name, t.Spec, t.Section)
			fmt.Fprintf(&b, "func (o Options) %s() (string, bool) { return o.CString(Tag%s) }\n\n", name, name)
			fmt.Fprintf(&b, "// Set%s sets the %s TLV, adding the NUL terminator.\n", name, t.Spec)
			fmt.Fprintf(&b, "func (o *Options) Set%s(v string) { o.SetCString(Tag%s, v) }\n\n", name, name)
		case tOctets:
			fmt.Fprintf(&b, "// %s returns the %s TLV (section %s) and whether it is present.\n", name, t.Spec, t.Section)
			fmt.Fprintf(&b, "func (o Options) %s() ([]byte, bool) { return o.Get(Tag%s) }\n\n", name, name)
			fmt.Fprintf(&b, "// Set%s sets the %s TLV.\n", name, t.Spec)
			fmt.Fprintf(&b, "func (o *Options) Set%s(v []byte) { o.Set(Tag%s, v) }\n\n", name, name)
		case tFlag:
			fmt.Fprintf(&b, "// %s reports whether the %s TLV (section %s) is present.\n", name, t.Spec, t.Section)
			fmt.Fprintf(&b, "func (o Options) %s() bool {\n\t_, ok := o.Get(Tag%s)\n\treturn ok\n}\n\n", name, name)
			fmt.Fprintf(&b, "// Set%s adds the %s TLV (no value).\n", name, t.Spec)
			fmt.Fprintf(&b, "func (o *Options) Set%s() { o.Set(Tag%s, nil) }\n\n", name, name)
		case tNetErr:
			fmt.Fprintf(&b, "// %s returns the %s TLV (section %s) and whether it is present.\n", name, t.Spec, t.Section)
			fmt.Fprintf(&b, "func (o Options) %s() (NetworkErrorCode, bool) {\n\tv, ok := o.Get(Tag%s)\n\tif !ok || len(v) != 3 {\n\t\treturn NetworkErrorCode{}, false\n\t}\n\treturn NetworkErrorCode{Type: v[0], Code: uint16(v[1])<<8 | uint16(v[2])}, true\n}\n\n", name, name)
			fmt.Fprintf(&b, "// Set%s sets the %s TLV.\n", name, t.Spec)
			fmt.Fprintf(&b, "func (o *Options) Set%s(v NetworkErrorCode) {\n\to.Set(Tag%s, []byte{v.Type, byte(v.Code >> 8), byte(v.Code)})\n}\n\n", name, name)
		}
	}
	return b.Bytes()
}
