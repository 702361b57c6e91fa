package pdu

import "strconv"

// CommandStatus is the command_status header field (SMPP 3.4 section 5.1.3). A non-zero status is also
// an error value, so a session can return the status a peer answered with as the error of a call.
type CommandStatus uint32

// The command_status values of SMPP 3.4 section 5.1.3, named as in the specification.
const (
	ESME_ROK              CommandStatus = 0x00000000 // No Error
	ESME_RINVMSGLEN       CommandStatus = 0x00000001 // Message Length is invalid
	ESME_RINVCMDLEN       CommandStatus = 0x00000002 // Command Length is invalid
	ESME_RINVCMDID        CommandStatus = 0x00000003 // Invalid Command ID
	ESME_RINVBNDSTS       CommandStatus = 0x00000004 // Incorrect BIND Status for given command
	ESME_RALYBND          CommandStatus = 0x00000005 // ESME Already in Bound State
	ESME_RINVPRTFLG       CommandStatus = 0x00000006 // Invalid Priority Flag
	ESME_RINVREGDLVFLG    CommandStatus = 0x00000007 // Invalid Registered Delivery Flag
	ESME_RSYSERR          CommandStatus = 0x00000008 // System Error
	ESME_RINVSRCADR       CommandStatus = 0x0000000A // Invalid Source Address
	ESME_RINVDSTADR       CommandStatus = 0x0000000B // Invalid Dest Addr
	ESME_RINVMSGID        CommandStatus = 0x0000000C // Message ID is invalid
	ESME_RBINDFAIL        CommandStatus = 0x0000000D // Bind Failed
	ESME_RINVPASWD        CommandStatus = 0x0000000E // Invalid Password
	ESME_RINVSYSID        CommandStatus = 0x0000000F // Invalid System ID
	ESME_RCANCELFAIL      CommandStatus = 0x00000011 // Cancel SM Failed
	ESME_RREPLACEFAIL     CommandStatus = 0x00000013 // Replace SM Failed
	ESME_RMSGQFUL         CommandStatus = 0x00000014 // Message Queue Full
	ESME_RINVSERTYP       CommandStatus = 0x00000015 // Invalid Service Type
	ESME_RINVNUMDESTS     CommandStatus = 0x00000033 // Invalid number of destinations
	ESME_RINVDLNAME       CommandStatus = 0x00000034 // Invalid Distribution List name
	ESME_RINVDESTFLAG     CommandStatus = 0x00000040 // Destination flag is invalid (submit_multi)
	ESME_RINVSUBREP       CommandStatus = 0x00000042 // Invalid 'submit with replace' request
	ESME_RINVESMCLASS     CommandStatus = 0x00000043 // Invalid esm_class field data
	ESME_RCNTSUBDL        CommandStatus = 0x00000044 // Cannot Submit to Distribution List
	ESME_RSUBMITFAIL      CommandStatus = 0x00000045 // submit_sm or submit_multi failed
	ESME_RINVSRCTON       CommandStatus = 0x00000048 // Invalid Source address TON
	ESME_RINVSRCNPI       CommandStatus = 0x00000049 // Invalid Source address NPI
	ESME_RINVDSTTON       CommandStatus = 0x00000050 // Invalid Destination address TON
	ESME_RINVDSTNPI       CommandStatus = 0x00000051 // Invalid Destination address NPI
	ESME_RINVSYSTYP       CommandStatus = 0x00000053 // Invalid system_type field
	ESME_RINVREPFLAG      CommandStatus = 0x00000054 // Invalid replace_if_present flag
	ESME_RINVNUMMSGS      CommandStatus = 0x00000055 // Invalid number of messages
	ESME_RTHROTTLED       CommandStatus = 0x00000058 // Throttling error (ESME has exceeded allowed message limits)
	ESME_RINVSCHED        CommandStatus = 0x00000061 // Invalid Scheduled Delivery Time
	ESME_RINVEXPIRY       CommandStatus = 0x00000062 // Invalid message validity period (Expiry time)
	ESME_RINVDFTMSGID     CommandStatus = 0x00000063 // Predefined Message Invalid or Not Found
	ESME_RX_T_APPN        CommandStatus = 0x00000064 // ESME Receiver Temporary App Error Code
	ESME_RX_P_APPN        CommandStatus = 0x00000065 // ESME Receiver Permanent App Error Code
	ESME_RX_R_APPN        CommandStatus = 0x00000066 // ESME Receiver Reject Message Error Code
	ESME_RQUERYFAIL       CommandStatus = 0x00000067 // query_sm request failed
	ESME_RINVOPTPARSTREAM CommandStatus = 0x000000C0 // Error in the optional part of the PDU Body
	ESME_ROPTPARNOTALLWD  CommandStatus = 0x000000C1 // Optional Parameter not allowed
	ESME_RINVPARLEN       CommandStatus = 0x000000C2 // Invalid Parameter Length
	ESME_RMISSINGOPTPARAM CommandStatus = 0x000000C3 // Expected Optional Parameter missing
	ESME_RINVOPTPARAMVAL  CommandStatus = 0x000000C4 // Invalid Optional Parameter Value
	ESME_RDELIVERYFAILURE CommandStatus = 0x000000FE // Delivery Failure (used for data_sm_resp)
	ESME_RUNKNOWNERR      CommandStatus = 0x000000FF // Unknown Error
)

var statusNames = map[CommandStatus]string{
	ESME_ROK: "ESME_ROK", ESME_RINVMSGLEN: "ESME_RINVMSGLEN", ESME_RINVCMDLEN: "ESME_RINVCMDLEN",
	ESME_RINVCMDID: "ESME_RINVCMDID", ESME_RINVBNDSTS: "ESME_RINVBNDSTS", ESME_RALYBND: "ESME_RALYBND",
	ESME_RINVPRTFLG: "ESME_RINVPRTFLG", ESME_RINVREGDLVFLG: "ESME_RINVREGDLVFLG", ESME_RSYSERR: "ESME_RSYSERR",
	ESME_RINVSRCADR: "ESME_RINVSRCADR", ESME_RINVDSTADR: "ESME_RINVDSTADR", ESME_RINVMSGID: "ESME_RINVMSGID",
	ESME_RBINDFAIL: "ESME_RBINDFAIL", ESME_RINVPASWD: "ESME_RINVPASWD", ESME_RINVSYSID: "ESME_RINVSYSID",
	ESME_RCANCELFAIL: "ESME_RCANCELFAIL", ESME_RREPLACEFAIL: "ESME_RREPLACEFAIL", ESME_RMSGQFUL: "ESME_RMSGQFUL",
	ESME_RINVSERTYP: "ESME_RINVSERTYP", ESME_RINVNUMDESTS: "ESME_RINVNUMDESTS", ESME_RINVDLNAME: "ESME_RINVDLNAME",
	ESME_RINVDESTFLAG: "ESME_RINVDESTFLAG", ESME_RINVSUBREP: "ESME_RINVSUBREP", ESME_RINVESMCLASS: "ESME_RINVESMCLASS",
	ESME_RCNTSUBDL: "ESME_RCNTSUBDL", ESME_RSUBMITFAIL: "ESME_RSUBMITFAIL", ESME_RINVSRCTON: "ESME_RINVSRCTON",
	ESME_RINVSRCNPI: "ESME_RINVSRCNPI", ESME_RINVDSTTON: "ESME_RINVDSTTON", ESME_RINVDSTNPI: "ESME_RINVDSTNPI",
	ESME_RINVSYSTYP: "ESME_RINVSYSTYP", ESME_RINVREPFLAG: "ESME_RINVREPFLAG", ESME_RINVNUMMSGS: "ESME_RINVNUMMSGS",
	ESME_RTHROTTLED: "ESME_RTHROTTLED", ESME_RINVSCHED: "ESME_RINVSCHED", ESME_RINVEXPIRY: "ESME_RINVEXPIRY",
	ESME_RINVDFTMSGID: "ESME_RINVDFTMSGID", ESME_RX_T_APPN: "ESME_RX_T_APPN", ESME_RX_P_APPN: "ESME_RX_P_APPN",
	ESME_RX_R_APPN: "ESME_RX_R_APPN", ESME_RQUERYFAIL: "ESME_RQUERYFAIL", ESME_RINVOPTPARSTREAM: "ESME_RINVOPTPARSTREAM",
	ESME_ROPTPARNOTALLWD: "ESME_ROPTPARNOTALLWD", ESME_RINVPARLEN: "ESME_RINVPARLEN",
	ESME_RMISSINGOPTPARAM: "ESME_RMISSINGOPTPARAM", ESME_RINVOPTPARAMVAL: "ESME_RINVOPTPARAMVAL",
	ESME_RDELIVERYFAILURE: "ESME_RDELIVERYFAILURE", ESME_RUNKNOWNERR: "ESME_RUNKNOWNERR",
}

// String returns the specification's name of s, or its hex value for statuses 3.4 does not name
// (vendor-specific values 0x400-0x4FF among them).
func (s CommandStatus) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return "0x" + strconv.FormatUint(uint64(s), 16)
}

// Error makes a status usable as an error: "ESME_RTHROTTLED (0x58)".
func (s CommandStatus) Error() string {
	return s.String() + " (0x" + strconv.FormatUint(uint64(s), 16) + ")"
}

// Temporary reports whether a submission refused with s is worth retrying later rather than failing:
// the peer is throttling, its queue is full, or it had a passing system fault.
func (s CommandStatus) Temporary() bool {
	switch s {
	case ESME_RTHROTTLED, ESME_RMSGQFUL, ESME_RSYSERR, ESME_RX_T_APPN:
		return true
	}
	return false
}
