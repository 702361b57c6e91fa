package pdu

import (
	"bytes"
	"testing"

	fiorix "github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/fiorix/go-smpp/smpp/pdu/pdufield"
	"github.com/fiorix/go-smpp/smpp/pdu/pdutlv"
)

// The benchmarks put smppgw's codec and fiorix/go-smpp's side by side on the same PDUs:
//
//	go test -run=^$ -bench='SubmitSM|DeliverSM' -benchmem ./pdu/

var benchSubmit = &SubmitSM{SourceAddrTON: TONInternational, SourceAddrNPI: NPIISDN, SourceAddr: "447700900123", DestAddrTON: TONInternational,
	DestAddrNPI: NPIISDN, DestinationAddr: "447700900456", RegisteredDelivery: RegisteredDeliveryReceiptFinal, DataCoding: 0,
	ShortMessage: []byte("Hello world, this is a typical short message of some sixty octets.")}

var benchDeliver = func() *DeliverSM {
	d := &DeliverSM{SourceAddrTON: TONInternational, SourceAddrNPI: NPIISDN, SourceAddr: "447700900456", DestAddrTON: TONInternational, DestAddrNPI: NPIISDN,
		DestinationAddr: "447700900123", EsmClass: EsmClassReceipt,
		ShortMessage: []byte("id:5f3a9c01 sub:001 dlvrd:001 submit date:2611212231 done date:2611212232 stat:DELIVRD err:000 text:Hello world")}
	d.Options.SetReceiptedMessageID("5f3a9c01")
	d.Options.SetMessageState(DELIVERED)
	return d
}()

func fiorixSM(b fiorix.Body, p *DeliverSM) fiorix.Body {
	f := b.Fields()
	_ = f.Set(pdufield.SourceAddrTON, p.SourceAddrTON)
	_ = f.Set(pdufield.SourceAddrNPI, p.SourceAddrNPI)
	_ = f.Set(pdufield.SourceAddr, p.SourceAddr)
	_ = f.Set(pdufield.DestAddrTON, p.DestAddrTON)
	_ = f.Set(pdufield.DestAddrNPI, p.DestAddrNPI)
	_ = f.Set(pdufield.DestinationAddr, p.DestinationAddr)
	_ = f.Set(pdufield.ESMClass, p.EsmClass)
	_ = f.Set(pdufield.RegisteredDelivery, p.RegisteredDelivery)
	_ = f.Set(pdufield.DataCoding, p.DataCoding)
	_ = f.Set(pdufield.ShortMessage, p.ShortMessage)
	for tag, v := range p.Options.All() {
		_ = b.TLVFields().Set(pdutlv.Tag(tag), v)
	}
	return b
}

func benchEncode(b *testing.B, body Body) {
	b.ReportAllocs()
	buf := make([]byte, 0, 512)
	for b.Loop() {
		buf, _ = Append(buf[:0], 1, ESME_ROK, body)
	}
}

func benchEncodeFiorix(b *testing.B, fb fiorix.Body) {
	b.ReportAllocs()
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		_ = fb.SerializeTo(&buf)
	}
}

func benchDecode(b *testing.B, body Body) {
	wire, _ := Append(nil, 1, ESME_ROK, body)
	b.ReportAllocs()
	b.SetBytes(int64(len(wire)))
	for b.Loop() {
		if _, err := Decode(ParseHeader(wire), wire[HeaderLen:]); err != nil {
			b.Fatal(err)
		}
	}
}

func benchDecodeFiorix(b *testing.B, body Body) {
	wire, _ := Append(nil, 1, ESME_ROK, body)
	b.ReportAllocs()
	b.SetBytes(int64(len(wire)))
	r := bytes.NewReader(wire)
	for b.Loop() {
		r.Reset(wire)
		if _, err := fiorix.Decode(r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeSubmitSM(b *testing.B) {
	b.Run("impl=smppgw", func(b *testing.B) { benchEncode(b, benchSubmit) })
	b.Run("impl=fiorix", func(b *testing.B) {
		benchEncodeFiorix(b, fiorixSM(fiorix.NewSubmitSM(nil), (*DeliverSM)(benchSubmit)))
	})
}

func BenchmarkDecodeSubmitSM(b *testing.B) {
	b.Run("impl=smppgw", func(b *testing.B) { benchDecode(b, benchSubmit) })
	b.Run("impl=fiorix", func(b *testing.B) { benchDecodeFiorix(b, benchSubmit) })
}

func BenchmarkEncodeDeliverSM(b *testing.B) {
	b.Run("impl=smppgw", func(b *testing.B) { benchEncode(b, benchDeliver) })
	b.Run("impl=fiorix", func(b *testing.B) { benchEncodeFiorix(b, fiorixSM(fiorix.NewDeliverSM(), benchDeliver)) })
}

func BenchmarkDecodeDeliverSM(b *testing.B) {
	b.Run("impl=smppgw", func(b *testing.B) { benchDecode(b, benchDeliver) })
	b.Run("impl=fiorix", func(b *testing.B) { benchDecodeFiorix(b, benchDeliver) })
}

// BenchmarkReader measures reading and decoding a stream of submit_sm frames, the session's hot path.
func BenchmarkReader(b *testing.B) {
	wire, _ := Append(nil, 1, ESME_ROK, benchSubmit)
	stream := bytes.Repeat(wire, 1000)
	b.ReportAllocs()
	b.SetBytes(int64(len(stream)))
	src := bytes.NewReader(stream)
	for b.Loop() {
		src.Reset(stream)
		r := NewReader(src, 0)
		for range 1000 {
			if _, _, err := r.Read(); err != nil {
				b.Fatal(err)
			}
		}
	}
}
