package pdu

import "github.com/fiorix/go-smpp/smpp/pdu/pdufield"

func fieldName(s string) pdufield.Name { return pdufield.Name(s) }
