package pdu

import (
	"bytes"
	"encoding/binary"
	"strconv"
)

// HeaderLen is the size of the PDU header: command_length, command_id, command_status, sequence_number.
const HeaderLen = 16

// MaxSequence is the largest sequence_number; SMPP 3.4 section 5.1.4 allows 0x00000001 to 0x7FFFFFFF.
const MaxSequence = 0x7FFFFFFF

// CommandID is the command_id header field (SMPP 3.4 section 5.1.2).
type CommandID uint32

// IsResponse reports whether c is a response command id (bit 31 set), generic_nack included.
func (c CommandID) IsResponse() bool { return c&0x80000000 != 0 }

// Response returns the id of the response to request c (submit_sm -> submit_sm_resp). For an id that is
// already a response it returns c.
func (c CommandID) Response() CommandID { return c | 0x80000000 }

func unknownCommandName(c CommandID) string {
	return "command_id(0x" + strconv.FormatUint(uint64(c), 16) + ")"
}

// Header is the fixed header that starts every PDU (SMPP 3.4 section 3.2).
type Header struct {
	Length   uint32 // command_length: header and body, in octets
	ID       CommandID
	Status   CommandStatus
	Sequence uint32
}

// AppendHeader appends the 16 header octets of h to dst.
func AppendHeader(dst []byte, h Header) []byte {
	dst = binary.BigEndian.AppendUint32(dst, h.Length)
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.ID))
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.Status))
	return binary.BigEndian.AppendUint32(dst, h.Sequence)
}

// ParseHeader reads a header from the first 16 octets of b, which must hold at least that many.
func ParseHeader(b []byte) Header {
	_ = b[15]
	return Header{
		Length:   binary.BigEndian.Uint32(b),
		ID:       CommandID(binary.BigEndian.Uint32(b[4:])),
		Status:   CommandStatus(binary.BigEndian.Uint32(b[8:])),
		Sequence: binary.BigEndian.Uint32(b[12:]),
	}
}

// Body is the typed body of one PDU: *SubmitSM, *BindTransceiver, *EnquireLink, ... (New returns one
// for a command id). Bodies carry no header: the sequence number and status travel beside them.
type Body interface {
	CommandID() CommandID
	// AppendBody appends the encoded body to dst, or reports the first field that cannot be encoded.
	AppendBody(dst []byte) ([]byte, error)
	// DecodeBody reads the body from src; the result may alias src.
	DecodeBody(src []byte) error
}

// Append appends a whole PDU, header and body, to dst; command_length is computed. Nothing is
// allocated when dst has room. On error dst is returned unchanged in length.
func Append(dst []byte, seq uint32, status CommandStatus, body Body) ([]byte, error) {
	start := len(dst)
	dst = AppendHeader(dst, Header{ID: body.CommandID(), Status: status, Sequence: seq})
	dst, err := body.AppendBody(dst)
	if err != nil {
		return dst[:start], err
	}
	if status != ESME_ROK && bytes.Equal(dst[start+HeaderLen:], emptyResponses[body.CommandID()]) {
		// An error response whose fields are all empty goes header-only, as SMPP 3.4 section 4.4.2 has
		// it for submit_sm_resp and as Kannel, cloudhopper and node-smpp send every error response.
		dst = dst[:start+HeaderLen]
	}
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start))
	return dst, nil
}

// Decode returns the typed body of a PDU whose header is h and whose body octets are body. The body
// aliases the octets, which must not be modified while it is in use.
//
// A response with a non-zero command_status and no body decodes to an empty body: SMPP 3.4 section 4.4.2
// says the message_id of submit_sm_resp is not returned on error, and most peers send any error
// response header-only.
func Decode(h Header, body []byte) (Body, error) {
	b := New(h.ID)
	if b == nil {
		return nil, &FieldError{Command: h.ID, Field: "command_id", Status: ESME_RINVCMDID, Reason: "unknown command id", Err: ErrUnknownCommand}
	}
	if h.ID.IsResponse() && h.Status != ESME_ROK && len(body) == 0 {
		return b, nil
	}
	if err := b.DecodeBody(body); err != nil {
		return nil, err
	}
	return b, nil
}

// emptyResponses holds the encoding of each response body with every field empty.
var emptyResponses = func() map[CommandID][]byte {
	m := map[CommandID][]byte{}
	for id := CommandID(0); id < 0x200; id++ {
		if b := New(id.Response()); b != nil {
			m[id.Response()], _ = b.AppendBody(nil)
		}
	}
	return m
}()
