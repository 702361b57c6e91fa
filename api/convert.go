package api

import (
	"fmt"
	"time"

	smppgwv1 "github.com/smppgw/smppgw/api/gen/smppgw/v1"
	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/pdu/text"
	"github.com/smppgw/smppgw/store"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Conversions between the API's messages and the gateway's and store's types.

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func dur(d time.Duration) *durationpb.Duration {
	if d == 0 {
		return nil
	}
	return durationpb.New(d)
}

// data_coding octets of the API's DataCoding values.
var codingOctet = map[smppgwv1.DataCoding]uint8{
	smppgwv1.DataCoding_DATA_CODING_GSM7:   uint8(text.Default),
	smppgwv1.DataCoding_DATA_CODING_IA5:    uint8(text.IA5),
	smppgwv1.DataCoding_DATA_CODING_LATIN1: uint8(text.Latin1),
	smppgwv1.DataCoding_DATA_CODING_BINARY: uint8(text.Binary),
	smppgwv1.DataCoding_DATA_CODING_UCS2:   uint8(text.UCS2),
}

func codingToProto(dc uint8) smppgwv1.DataCoding {
	switch text.Coding(dc) {
	case text.Default:
		return smppgwv1.DataCoding_DATA_CODING_GSM7
	case text.IA5:
		return smppgwv1.DataCoding_DATA_CODING_IA5
	case text.Latin1:
		return smppgwv1.DataCoding_DATA_CODING_LATIN1
	case text.Binary, text.Binary8:
		return smppgwv1.DataCoding_DATA_CODING_BINARY
	case text.UCS2:
		return smppgwv1.DataCoding_DATA_CODING_UCS2
	}
	return smppgwv1.DataCoding_DATA_CODING_UNSPECIFIED
}

func stateToProto(s pdu.MessageState) smppgwv1.MessageStatus {
	if s >= pdu.ENROUTE && s <= pdu.REJECTED {
		return smppgwv1.MessageStatus(s) // the enum keeps SMPP's numbers
	}
	return smppgwv1.MessageStatus_MESSAGE_STATUS_UNSPECIFIED
}

func registeredToProto(rd uint8) smppgwv1.RegisteredDelivery {
	switch rd & pdu.RegisteredDeliveryReceiptMask {
	case pdu.RegisteredDeliveryReceiptFinal:
		return smppgwv1.RegisteredDelivery_REGISTERED_DELIVERY_FINAL
	case pdu.RegisteredDeliveryReceiptFailure:
		return smppgwv1.RegisteredDelivery_REGISTERED_DELIVERY_FAILURE
	}
	return smppgwv1.RegisteredDelivery_REGISTERED_DELIVERY_NONE
}

func errorCode(e uint32) string {
	if e == 0 {
		return ""
	}
	return fmt.Sprintf("%03d", e)
}

// isText tells text codings (decoded for the API) from binary ones (passed as bytes).
func isText(dc uint8) bool {
	c := text.Coding(dc)
	return c != text.Binary && c != text.Binary8 && c.HasCodec()
}

// content returns a message's user data, reassembled from its parts without their UDHs.
func content(m *store.Message) []byte {
	var data []byte
	for i := range m.Parts {
		p := &m.Parts[i]
		sm := &pdu.SubmitSM{EsmClass: p.ESMClass, DataCoding: m.DataCoding, ShortMessage: p.ShortMessage, Options: pdu.Options(p.TLVs)}
		part, err := pdu.ReadPart(sm)
		if err != nil {
			data = append(data, p.ShortMessage...) // stored by us, so well formed; keep what is there
			continue
		}
		data = append(data, part.Data...)
	}
	return data
}

func messageToProto(m *store.Message, receipts []store.Receipt) *smppgwv1.Message {
	out := &smppgwv1.Message{
		MessageId:          m.ID,
		Account:            m.Account,
		Source:             m.Source.Addr,
		Destination:        m.Destination.Addr,
		DataCoding:         codingToProto(m.DataCoding),
		Status:             stateToProto(m.Status),
		PartCount:          uint32(len(m.Parts)),
		RegisteredDelivery: registeredToProto(m.RegisteredDelivery),
		Priority:           uint32(m.PriorityFlag),
		ClientReference:    m.ClientRef,
		CreateTime:         ts(m.CreatedAt),
		UpdateTime:         ts(m.UpdatedAt),
		ExpireTime:         ts(m.Validity),
	}
	data := content(m)
	if isText(m.DataCoding) {
		out.Payload = &smppgwv1.Message_Text{Text: text.DecodeLossy(text.Coding(m.DataCoding), data)}
	} else {
		out.Payload = &smppgwv1.Message_Binary{Binary: data}
	}
	for i, p := range m.Parts {
		mp := &smppgwv1.MessagePart{
			Index:             uint32(i + 1),
			Status:            stateToProto(p.Status),
			Upstream:          p.Upstream,
			UpstreamMessageId: p.UpstreamID,
			SubmitTime:        ts(p.SubmittedAt),
		}
		if p.Error != 0 {
			mp.Error = pdu.CommandStatus(p.Error).String()
		}
		if p.UpstreamID != "" || !p.SubmittedAt.IsZero() {
			mp.Attempts = 1 // the store counts no retries; a part with an answer was tried at least once
		}
		if p.Status.Final() {
			mp.DoneTime = ts(p.UpdatedAt)
		}
		out.Parts = append(out.Parts, mp)
	}
	for i := range receipts {
		out.Receipts = append(out.Receipts, receiptToProto(&receipts[i], m.ClientRef))
	}
	return out
}

func receiptToProto(r *store.Receipt, clientRef string) *smppgwv1.Receipt {
	b := new(receiptBlock)
	b.fill(r, clientRef)
	return &b.receipt
}

// receiptBlock holds a receipt's message, its timestamps and the stream's envelope in one
// allocation rather than five: StreamReceipts sends one for every receipt.
type receiptBlock struct {
	resp    smppgwv1.StreamReceiptsResponse
	receipt smppgwv1.Receipt
	times   [3]timestamppb.Timestamp
}

// streamedReceipt is the StreamReceipts message of r.
func streamedReceipt(r *store.Receipt, clientRef string) *smppgwv1.StreamReceiptsResponse {
	b := new(receiptBlock)
	b.fill(r, clientRef)
	b.resp.Receipt = &b.receipt
	return &b.resp
}

func (b *receiptBlock) fill(r *store.Receipt, clientRef string) {
	out := &b.receipt
	out.MessageId = r.MessageID
	out.PartIndex = uint32(r.Part + 1)
	out.ClientReference = clientRef
	out.Status = stateToProto(r.State)
	out.ErrorCode = errorCode(r.Error)
	out.Upstream = r.Upstream
	out.UpstreamMessageId = r.UpstreamID
	out.SubmitTime = b.ts(0, r.Submitted)
	out.DoneTime = b.ts(1, r.Done)
	out.ReceiveTime = b.ts(2, r.Received)
	out.Text = string(r.Text)
}

// ts is ts(t) in the block's i-th timestamp.
func (b *receiptBlock) ts(i int, t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	b.times[i].Seconds, b.times[i].Nanos = t.Unix(), int32(t.Nanosecond())
	return &b.times[i]
}

// moToProto is an MO as the API gives it; upstream is the one it came from (gateway.Event.Upstream).
func moToProto(id, upstream string, d *store.Delivery) *smppgwv1.MoMessage {
	out := &smppgwv1.MoMessage{
		MoId:        id,
		Account:     d.Account,
		Upstream:    upstream,
		Source:      d.Source.Addr,
		Destination: d.Destination.Addr,
		DataCoding:  codingToProto(d.DataCoding),
		ReceiveTime: ts(d.CreatedAt),
	}
	data := d.ShortMessage
	if part, err := pdu.ReadPart(&pdu.DeliverSM{EsmClass: d.ESMClass, DataCoding: d.DataCoding, ShortMessage: d.ShortMessage, Options: pdu.Options(d.TLVs)}); err == nil {
		data = part.Data
	}
	if isText(d.DataCoding) {
		out.Payload = &smppgwv1.MoMessage_Text{Text: text.DecodeLossy(text.Coding(d.DataCoding), data)}
	} else {
		out.Payload = &smppgwv1.MoMessage_Binary{Binary: data}
	}
	return out
}

func bindTypeToProto(b session.BindType) smppgwv1.BindType {
	switch b {
	case session.BindTransmitter:
		return smppgwv1.BindType_BIND_TYPE_TRANSMITTER
	case session.BindReceiver:
		return smppgwv1.BindType_BIND_TYPE_RECEIVER
	case session.BindTransceiver:
		return smppgwv1.BindType_BIND_TYPE_TRANSCEIVER
	}
	return smppgwv1.BindType_BIND_TYPE_UNSPECIFIED
}
