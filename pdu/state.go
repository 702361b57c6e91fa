package pdu

import "strconv"

// MessageState is the message_state of query_sm_resp and of the message_state TLV
// (SMPP 3.4 section 5.2.28).
type MessageState uint8

// The message states of SMPP 3.4 section 5.2.28.
const (
	ENROUTE       MessageState = 1
	DELIVERED     MessageState = 2
	EXPIRED       MessageState = 3
	DELETED       MessageState = 4
	UNDELIVERABLE MessageState = 5
	ACCEPTED      MessageState = 6
	UNKNOWN       MessageState = 7
	REJECTED      MessageState = 8
)

var stateNames = [...]string{
	ENROUTE: "ENROUTE", DELIVERED: "DELIVERED", EXPIRED: "EXPIRED", DELETED: "DELETED",
	UNDELIVERABLE: "UNDELIVERABLE", ACCEPTED: "ACCEPTED", UNKNOWN: "UNKNOWN", REJECTED: "REJECTED",
}

// String returns the specification's name of m ("DELIVERED"), or its number for values 3.4 does not define.
func (m MessageState) String() string {
	if int(m) < len(stateNames) && stateNames[m] != "" {
		return stateNames[m]
	}
	return "MessageState(" + strconv.Itoa(int(m)) + ")"
}

// Final reports whether m is a final state: no further receipt is expected after it.
func (m MessageState) Final() bool {
	switch m {
	case DELIVERED, EXPIRED, DELETED, UNDELIVERABLE, REJECTED:
		return true
	}
	return false
}
