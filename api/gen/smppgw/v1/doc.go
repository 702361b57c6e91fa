// Package smppgwv1 is the Go code generated from proto/smppgw/v1: messages, gRPC clients and servers
// (MessageService, AdminService) and their grpc-gateway REST handlers.
//
// Everything here but this file is generated: change the .proto files and run scripts/gen-proto.sh;
// CI (scripts/check-generated.sh) fails when the committed output differs from a fresh generation.
package smppgwv1
