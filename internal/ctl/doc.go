// Package ctl is the client side of `smppgw ctl`: a Client for the gateway's REST admin API (and
// the receipt stream of the message API) that returns the generated smppgw.v1 types, and the
// human output of those types as aligned tables.
//
// It speaks only REST over net/http, with the API's own JSON (protojson), so it needs nothing but
// the URL and credentials an operator has. It must not import the gateway, the store or the api
// server: what it knows of the gateway is the contract in proto/smppgw/v1.
package ctl
