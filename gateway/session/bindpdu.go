package session

import "github.com/smppgw/smppgw/pdu"

// The three bind requests of SMPP 3.4 share one field layout, and so do pdu's three types for them:
// a *pdu.BindTransceiver serves as the common view, converted to and from the other two.

// BindOf returns the bind type and fields of a bind request, or false for any other body.
func BindOf(body pdu.Body) (BindType, *pdu.BindTransceiver, bool) {
	switch b := body.(type) {
	case *pdu.BindTransmitter:
		return BindTransmitter, (*pdu.BindTransceiver)(b), true
	case *pdu.BindReceiver:
		return BindReceiver, (*pdu.BindTransceiver)(b), true
	case *pdu.BindTransceiver:
		return BindTransceiver, b, true
	}
	return 0, nil, false
}

// bindBody returns the bind request of type bt carrying b's fields, or nil for an unknown type.
func bindBody(bt BindType, b *pdu.BindTransceiver) pdu.Body {
	switch bt {
	case BindTransmitter:
		return (*pdu.BindTransmitter)(b)
	case BindReceiver:
		return (*pdu.BindReceiver)(b)
	case BindTransceiver:
		return b
	}
	return nil
}
