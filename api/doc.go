// Package api serves smppgw to applications and operators: the gRPC services generated from
// proto/smppgw/v1, their REST mapping through grpc-gateway, the admin endpoints, health and metrics.
//
// It calls into gateway and store; it holds no SMPP or storage logic of its own.
package api
