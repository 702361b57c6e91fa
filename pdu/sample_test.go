package pdu

// samples returns one populated body of every SMPP 3.4 command, shared by the round-trip tests, the
// fuzz seeds and the benchmarks.
func samples() []Body {
	var smOpts Options
	smOpts.SetUserMessageReference(7)
	smOpts.SetSourcePort(9200)
	smOpts.SetDestinationPort(2948)
	smOpts.Set(0x1410, []byte{0xde, 0xad}) // a vendor TLV, kept as is
	var rcptOpts Options
	rcptOpts.SetReceiptedMessageID("5f3a9c01")
	rcptOpts.SetMessageState(DELIVERED)
	rcptOpts.SetNetworkErrorCode(NetworkErrorCode{Type: 3, Code: 0x0102})
	var dataOpts Options
	dataOpts.SetMessagePayload([]byte("a payload longer than a short message could be, in principle"))
	dataOpts.SetMoreMessagesToSend(1)
	var bindRespOpts Options
	bindRespOpts.SetSCInterfaceVersion(0x34)
	var alertOpts Options
	alertOpts.SetMsAvailabilityStatus(0)
	var statusOpts Options
	statusOpts.SetAdditionalStatusInfoText("queued")
	statusOpts.SetDeliveryFailureReason(1)

	bind := BindTransceiver{SystemID: "smppclient1", Password: "password", SystemType: "VMA",
		InterfaceVersion: 0x34, AddrTON: TONInternational, AddrNPI: NPIISDN, AddressRange: "^44"}
	sm := SubmitSM{ServiceType: "CMT", SourceAddrTON: TONAlphanumeric, SourceAddrNPI: NPIUnknown, SourceAddr: "smppgw",
		DestAddrTON: TONInternational, DestAddrNPI: NPIISDN, DestinationAddr: "447700900456", EsmClass: 0, ProtocolID: 0,
		PriorityFlag: 1, ScheduleDeliveryTime: "261121223100000+", ValidityPeriod: "000001000000000R",
		RegisteredDelivery: RegisteredDeliveryReceiptFinal, ReplaceIfPresentFlag: 0, DataCoding: 0, SMDefaultMsgID: 0,
		ShortMessage: []byte("Hello world"), Options: smOpts}
	dsm := DeliverSM(sm)
	dsm.EsmClass = EsmClassReceipt
	dsm.ScheduleDeliveryTime, dsm.ValidityPeriod = "", ""
	dsm.ShortMessage = []byte("id:5f3a9c01 sub:001 dlvrd:001 submit date:2611212231 done date:2611212232 stat:DELIVRD err:000 text:Hello world")
	dsm.Options = rcptOpts
	return []Body{
		&GenericNack{},
		(*BindReceiver)(&bind), &BindReceiverResp{SystemID: "SMSC", Options: bindRespOpts},
		(*BindTransmitter)(&bind), &BindTransmitterResp{SystemID: "SMSC"},
		&bind, &BindTransceiverResp{SystemID: "SMSC", Options: bindRespOpts},
		&QuerySM{MessageID: "5f3a9c01", SourceAddrTON: TONInternational, SourceAddrNPI: NPIISDN, SourceAddr: "447700900123"},
		&QuerySMResp{MessageID: "5f3a9c01", FinalDate: "261121223200000+", MessageState: DELIVERED, ErrorCode: 0},
		&sm, &SubmitSMResp{MessageID: "5f3a9c01"},
		&dsm, &DeliverSMResp{},
		&Unbind{}, &UnbindResp{},
		&ReplaceSM{MessageID: "5f3a9c01", SourceAddrTON: TONInternational, SourceAddrNPI: NPIISDN, SourceAddr: "447700900123",
			ValidityPeriod: "000002000000000R", RegisteredDelivery: RegisteredDeliveryReceiptFinal, ShortMessage: []byte("Hello again")},
		&ReplaceSMResp{},
		&CancelSM{ServiceType: "", MessageID: "5f3a9c01", SourceAddrTON: TONInternational, SourceAddrNPI: NPIISDN, SourceAddr: "447700900123",
			DestAddrTON: TONInternational, DestAddrNPI: NPIISDN, DestinationAddr: "447700900456"},
		&CancelSMResp{},
		&Outbind{SystemID: "SMSC", Password: "secret"},
		&EnquireLink{}, &EnquireLinkResp{},
		&SubmitMulti{SourceAddrTON: TONInternational, SourceAddrNPI: NPIISDN, SourceAddr: "447700900123",
			DestAddresses: []DestAddress{{Flag: DestFlagSMEAddress, TON: TONInternational, NPI: NPIISDN, Addr: "447700900456"},
				{Flag: DestFlagDistList, DLName: "friends"}, {Flag: DestFlagSMEAddress, TON: TONInternational, NPI: NPIISDN, Addr: "447700900789"}},
			RegisteredDelivery: RegisteredDeliveryReceiptFinal, DataCoding: 8, ShortMessage: []byte{0, 'H', 0, 'i'}, Options: smOpts},
		&SubmitMultiResp{MessageID: "5f3a9c02", UnsuccessSMEs: []UnsuccessSME{
			{TON: TONInternational, NPI: NPIISDN, Addr: "447700900789", ErrorStatus: ESME_RINVDSTADR}}},
		&AlertNotification{SourceAddrTON: TONInternational, SourceAddrNPI: NPIISDN, SourceAddr: "447700900456", EsmeAddrTON: TONInternational,
			EsmeAddrNPI: NPIISDN, EsmeAddr: "447700900123", Options: alertOpts},
		&DataSM{ServiceType: "WAP", SourceAddrTON: TONInternational, SourceAddrNPI: NPIISDN, SourceAddr: "447700900123",
			DestAddrTON: TONInternational, DestAddrNPI: NPIISDN, DestinationAddr: "447700900456", EsmClass: 0, RegisteredDelivery: RegisteredDeliveryReceiptFinal,
			DataCoding: 4, Options: dataOpts},
		&DataSMResp{MessageID: "5f3a9c03", Options: statusOpts},
	}
}
