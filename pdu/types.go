package pdu

// Destination flags of a submit_multi dest_address (SMPP 3.4 section 5.2.25).
const (
	DestFlagSMEAddress = 1
	DestFlagDistList   = 2
)

// DestAddress is one dest_address of submit_multi: an SME address (Flag 1: TON, NPI, Addr) or a
// distribution list name (Flag 2: DLName).
type DestAddress struct {
	Flag   uint8  // dest_flag
	TON    uint8  // dest_addr_ton, with Flag 1
	NPI    uint8  // dest_addr_npi, with Flag 1
	Addr   string // destination_addr, with Flag 1, at most 20 octets
	DLName string // dl_name, with Flag 2, at most 20 octets
}

// UnsuccessSME is one unsuccess_sme of submit_multi_resp: a destination the SMSC refused, and why.
type UnsuccessSME struct {
	TON         uint8
	NPI         uint8
	Addr        string // destination_addr, at most 20 octets
	ErrorStatus CommandStatus
}

// NetworkErrorCode is the value of the network_error_code TLV (SMPP 3.4 section 5.3.2.31).
type NetworkErrorCode struct {
	Type uint8  // 1 ANSI-136, 2 IS-95, 3 GSM, 4-255 reserved
	Code uint16 // the network's error code
}

// esm_class bits (SMPP 3.4 section 5.2.12).
const (
	EsmClassModeMask     = 0x03 // messaging mode: default, datagram, forward, store and forward
	EsmClassTypeMask     = 0x3C // message type
	EsmClassReceipt      = 0x04 // SMSC delivery receipt (deliver_sm)
	EsmClassSMEAck       = 0x08 // SME delivery acknowledgement
	EsmClassUserAck      = 0x10 // SME manual/user acknowledgement
	EsmClassConvAbort    = 0x18 // conversation abort (Korean CDMA)
	EsmClassIntermediate = 0x20 // intermediate delivery notification
	EsmClassUDHI         = 0x40 // the short message starts with a user data header
	EsmClassReplyPath    = 0x80
)

// registered_delivery bits (SMPP 3.4 section 5.2.17). Bits 1-0 ask for an SMSC delivery receipt
// (0x03 is reserved), bits 3-2 for SME acknowledgements, bit 4 for intermediate notifications.
const (
	RegisteredDeliveryReceiptMask    = 0x03 // SMSC delivery receipt
	RegisteredDeliveryReceiptNone    = 0x00 // no SMSC delivery receipt
	RegisteredDeliveryReceiptFinal   = 0x01 // a receipt for the final outcome, success or failure
	RegisteredDeliveryReceiptFailure = 0x02 // a receipt only when delivery failed
	RegisteredDeliverySMEAckMask     = 0x0C // SME originated acknowledgement
	RegisteredDeliverySMEAck         = 0x04 // SME delivery acknowledgement requested
	RegisteredDeliveryUserAck        = 0x08 // SME manual/user acknowledgement requested
	RegisteredDeliveryIntermediate   = 0x10 // intermediate notification requested
	RegisteredDeliveryReservedMask   = 0xE0
)

// Type of number, the *_ton fields (SMPP 3.4 section 5.2.5).
const (
	TONUnknown          = 0
	TONInternational    = 1
	TONNational         = 2
	TONNetworkSpecific  = 3
	TONSubscriberNumber = 4
	TONAlphanumeric     = 5
	TONAbbreviated      = 6
)

// Numbering plan indicator, the *_npi fields (SMPP 3.4 section 5.2.6).
const (
	NPIUnknown     = 0
	NPIISDN        = 1  // ISDN (E.163/E.164)
	NPIData        = 3  // Data (X.121)
	NPITelex       = 4  // Telex (F.69)
	NPILandMobile  = 6  // Land Mobile (E.212)
	NPINational    = 8  // National
	NPIPrivate     = 9  // Private
	NPIERMES       = 10 // ERMES
	NPIInternet    = 14 // Internet (IP)
	NPIWAPClientID = 18 // WAP Client Id (to be defined by WAP Forum)
)
