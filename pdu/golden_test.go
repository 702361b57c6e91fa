package pdu

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	fiorix "github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
	"github.com/smppgw/smppgw/pdu/internal/hexfile"
)

type frame struct {
	h   Header
	raw []byte // the whole frame, header included
	b   Body
}

// readGolden decodes every frame of a golden file and checks that re-encoding gives the same octets.
func readGolden(t *testing.T, name string) []frame {
	t.Helper()
	wire, err := hexfile.Read(filepath.Join("testdata", "golden", name))
	if err != nil {
		t.Fatal(err)
	}
	var frames []frame
	r := NewReader(bytes.NewReader(wire), 0)
	off := 0
	for {
		h, b, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s frame %d: %v", name, len(frames), err)
		}
		raw := wire[off : off+int(h.Length)]
		off += int(h.Length)
		again, err := Append(nil, h.Sequence, h.Status, b)
		if err != nil || !bytes.Equal(again, raw) {
			t.Fatalf("%s frame %d (%s) re-encodes differently: %v\n got % x\nwant % x", name, len(frames), h.ID, err, again, raw)
		}
		frames = append(frames, frame{h, raw, b})
	}
	if off != len(wire) {
		t.Fatalf("%s: %d octets left over", name, len(wire)-off)
	}
	return frames
}

func TestGolden(t *testing.T) {
	t.Run("bind_transceiver", func(t *testing.T) {
		f := readGolden(t, "bind_transceiver.hex")
		bind := f[0].b.(*BindTransceiver)
		if bind.SystemID != "smppclient1" || bind.Password != "password" || bind.InterfaceVersion != 0x34 || f[0].h.Length != 42 {
			t.Errorf("bind = %+v, header %+v", bind, f[0].h)
		}
		resp := f[1].b.(*BindTransceiverResp)
		if v, ok := resp.Options.SCInterfaceVersion(); resp.SystemID != "SMSC" || !ok || v != 0x34 {
			t.Errorf("bind_resp = %+v", resp)
		}
	})
	t.Run("submit_sm", func(t *testing.T) {
		f := readGolden(t, "submit_sm.hex")
		sm := f[0].b.(*SubmitSM)
		ref, _ := sm.Options.UserMessageReference()
		if sm.SourceAddr != "447700900123" || sm.DestinationAddr != "447700900456" || string(sm.ShortMessage) != "Hello world" ||
			sm.RegisteredDelivery != RegisteredDeliveryReceiptFinal || sm.ValidityPeriod != "000001000000000R" || ref != 1 || f[0].h.Sequence != 2 {
			t.Errorf("submit_sm = %+v", sm)
		}
		if id := f[1].b.(*SubmitSMResp).MessageID; id != "5f3a9c01" {
			t.Errorf("message_id = %q", id)
		}
		if f[2].h.Status != ESME_RTHROTTLED || f[2].h.Length != 16 {
			t.Errorf("throttled response header = %+v", f[2].h)
		}
	})
	t.Run("deliver_sm receipt", func(t *testing.T) {
		f := readGolden(t, "deliver_sm_receipt.hex")
		d := f[0].b.(*DeliverSM)
		id, _ := d.Options.ReceiptedMessageID()
		st, _ := d.Options.MessageState()
		ne, _ := d.Options.NetworkErrorCode()
		if d.EsmClass != EsmClassReceipt || id != "5f3a9c01" || st != DELIVERED || ne != (NetworkErrorCode{Type: 3}) ||
			!bytes.HasPrefix(d.ShortMessage, []byte("id:5f3a9c01 ")) {
			t.Errorf("deliver_sm = %+v", d)
		}
	})
	t.Run("multipart UDH", func(t *testing.T) {
		f := readGolden(t, "submit_sm_multipart_udh.hex")
		if len(f) != 2 {
			t.Fatalf("%d frames, want 2", len(f))
		}
		var text []byte
		for i, fr := range f {
			sm := fr.b.(*SubmitSM)
			udh := sm.ShortMessage[:6]
			if sm.EsmClass&EsmClassUDHI == 0 || !bytes.Equal(udh, []byte{5, 0, 3, 0x2a, 2, byte(i + 1)}) {
				t.Errorf("part %d: esm_class %#x, udh % x", i+1, sm.EsmClass, udh)
			}
			text = append(text, sm.ShortMessage[6:]...)
		}
		if len(text) != 170 || !strings.HasPrefix(string(text), "The quick brown fox") {
			t.Errorf("reassembled %d octets: %q", len(text), text)
		}
	})
	t.Run("session", func(t *testing.T) {
		f := readGolden(t, "session.hex")
		want := []CommandID{EnquireLinkID, EnquireLinkRespID, UnbindID, UnbindRespID, GenericNackID}
		for i, fr := range f {
			if fr.h.ID != want[i] || fr.h.Length != 16 {
				t.Errorf("frame %d = %+v, want %s", i, fr.h, want[i])
			}
		}
		if f[4].h.Status != ESME_RINVCMDID {
			t.Errorf("generic_nack status %s", f[4].h.Status)
		}
	})
}

// mandatory returns the mandatory fields of the golden PDU types as fiorix names them, for comparison.
func mandatory(b Body) map[string]string {
	switch p := b.(type) {
	case *BindTransceiver:
		return map[string]string{"system_id": p.SystemID, "password": p.Password, "system_type": p.SystemType,
			"interface_version": fmt.Sprint(p.InterfaceVersion), "addr_ton": fmt.Sprint(p.AddrTON), "addr_npi": fmt.Sprint(p.AddrNPI),
			"address_range": p.AddressRange}
	case *BindTransceiverResp:
		return map[string]string{"system_id": p.SystemID}
	case *SubmitSMResp:
		return map[string]string{"message_id": p.MessageID}
	case *DeliverSMResp:
		return map[string]string{"message_id": p.MessageID}
	case *SubmitSM:
		return smFields((*DeliverSM)(p))
	case *DeliverSM:
		return smFields(p)
	}
	return map[string]string{}
}

func smFields(p *DeliverSM) map[string]string {
	return map[string]string{"service_type": p.ServiceType, "source_addr_ton": fmt.Sprint(p.SourceAddrTON),
		"source_addr_npi": fmt.Sprint(p.SourceAddrNPI), "source_addr": p.SourceAddr, "dest_addr_ton": fmt.Sprint(p.DestAddrTON),
		"dest_addr_npi": fmt.Sprint(p.DestAddrNPI), "destination_addr": p.DestinationAddr, "esm_class": fmt.Sprint(p.EsmClass),
		"protocol_id": fmt.Sprint(p.ProtocolID), "priority_flag": fmt.Sprint(p.PriorityFlag),
		"schedule_delivery_time": p.ScheduleDeliveryTime, "validity_period": p.ValidityPeriod,
		"registered_delivery": fmt.Sprint(p.RegisteredDelivery), "replace_if_present_flag": fmt.Sprint(p.ReplaceIfPresentFlag),
		"data_coding": fmt.Sprint(p.DataCoding), "sm_default_msg_id": fmt.Sprint(p.SMDefaultMsgID),
		"sm_length": fmt.Sprint(len(p.ShortMessage))}
}

// TestGoldenAgainstFiorix decodes the golden octets with github.com/fiorix/go-smpp's pdu package, an
// independent implementation, and checks that it reads the same header, fields and TLVs we do.
func TestGoldenAgainstFiorix(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.hex"))
	if len(files) < 5 {
		t.Fatalf("found %d golden files", len(files))
	}
	compared := 0
	defer func() {
		// Guard against a comparison that silently checks nothing.
		if compared < 60 {
			t.Errorf("compared only %d fields with fiorix", compared)
		}
	}()
	for _, file := range files {
		name := filepath.Base(file)
		for i, fr := range readGolden(t, name) {
			if fr.h.Status != ESME_ROK && fr.h.Length == HeaderLen {
				continue // fiorix refuses header-only error responses; nothing to compare
			}
			fb, err := fiorix.Decode(bytes.NewReader(fr.raw))
			if err != nil {
				if fr.h.ID == GenericNackID {
					continue
				}
				t.Errorf("%s frame %d (%s): fiorix: %v", name, i, fr.h.ID, err)
				continue
			}
			fh := fb.Header()
			if fh.Len != fr.h.Length || uint32(fh.ID) != uint32(fr.h.ID) || uint32(fh.Status) != uint32(fr.h.Status) || fh.Seq != fr.h.Sequence {
				t.Errorf("%s frame %d: fiorix header %+v, ours %+v", name, i, fh, fr.h)
			}
			fields := fb.Fields()
			for k, want := range mandatory(fr.b) {
				got, ok := fields[fieldName(k)]
				if !ok {
					t.Errorf("%s frame %d: fiorix has no %s", name, i, k)
					continue
				}
				compared++
				if got.String() != want {
					t.Errorf("%s frame %d: %s: fiorix %q, ours %q", name, i, k, got.String(), want)
				}
			}
			if sm, ok := smOf(fr.b); ok {
				got := fields[fieldName("short_message")].Bytes()
				if sm.EsmClass&EsmClassUDHI != 0 {
					// fiorix splits the UDH off into its own field.
					udh := fields[fieldName("gsm_sms_ud.udh")]
					if udh != nil {
						got = append(append([]byte{}, udh.Bytes()...), got...)
					}
				}
				compared++
				if !bytes.Equal(got, sm.ShortMessage) {
					t.Errorf("%s frame %d: short_message: fiorix % x, ours % x", name, i, got, sm.ShortMessage)
				}
				for tag, v := range sm.Options.All() {
					compared++
					ft, ok := fb.TLVFields()[pdutlv.Tag(tag)]
					if !ok || !bytes.Equal(ft.Bytes(), v) {
						t.Errorf("%s frame %d: TLV %s: fiorix %v, ours % x", name, i, tag, ft, v)
					}
				}
			}
		}
	}
}

func smOf(b Body) (*DeliverSM, bool) {
	switch p := b.(type) {
	case *SubmitSM:
		return (*DeliverSM)(p), true
	case *DeliverSM:
		return p, true
	}
	return nil, false
}
