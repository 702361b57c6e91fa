package gateway_test

import (
	"github.com/smppgw/smppgw/api"
	"github.com/smppgw/smppgw/gateway"
)

// The running gateway is what the API serves.
var _ api.Gateway = (*gateway.Gateway)(nil)
