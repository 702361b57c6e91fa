// Package smpptest drives one end of an SMPP connection PDU by PDU, for tests that need a peer which
// does exactly what the test says and nothing more: a raw ESME dialled to a server under test, or a raw
// SMSC a client under test binds to.
//
// It knows the wire (package pdu) and net, nothing else: it must not import gateway or gateway/session,
// so that the tests of both can use it. For an SMSC that answers by itself, see internal/smscsim.
package smpptest
