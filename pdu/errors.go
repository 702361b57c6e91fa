package pdu

import (
	"errors"
	"strconv"
)

// Sentinel errors callers branch on; FieldError wraps them.
var (
	ErrUnknownCommand = errors.New("pdu: unknown command id")
	ErrLength         = errors.New("pdu: invalid command_length")
	ErrField          = errors.New("pdu: invalid field")
)

// FieldError says which field of which PDU could not be decoded or encoded, and the command status a
// peer should be answered with for it. errors.Is(err, pdu.ESME_RINVDSTADR) and
// errors.As(err, &status) both work on it.
type FieldError struct {
	Command CommandID
	Field   string // the specification's name: "destination_addr", "sar_msg_ref_num", "command_length"
	Status  CommandStatus
	Reason  string
	Err     error // a sentinel: ErrField, ErrLength, ErrUnknownCommand
}

func (e *FieldError) Error() string {
	return "pdu: " + e.Command.String() + ": " + e.Field + ": " + e.Reason + " (" + e.Status.String() + ")"
}

// Unwrap exposes the command status and the sentinel.
func (e *FieldError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Status}
	}
	return []error{e.Status, e.Err}
}

// StatusOf returns the command status to answer a peer with for err: the one a FieldError or a
// CommandStatus carries, ESME_ROK for nil, and ESME_RSYSERR for anything else.
func StatusOf(err error) CommandStatus {
	if err == nil {
		return ESME_ROK
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe.Status
	}
	var st CommandStatus
	if errors.As(err, &st) {
		return st
	}
	return ESME_RSYSERR
}

func fieldErr(cmd CommandID, field string, st CommandStatus, reason string) *FieldError {
	return &FieldError{Command: cmd, Field: field, Status: st, Reason: reason, Err: ErrField}
}

func itoa(n int) string { return strconv.Itoa(n) }
