// Package gateway holds SMPP sessions and the two roles built on them: the Server (SMSC role) that
// carriers and ESMEs bind to, and the Client (ESME role) that binds out to upstream SMSCs, with the
// Router between them.
//
// It speaks the wire only through package pdu and persists only through package store.
package gateway
