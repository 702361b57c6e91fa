package api

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/smppgw/smppgw/gateway"
	"github.com/smppgw/smppgw/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// toStatus maps an error from the gateway, the store or this package to the gRPC status the
// client sees; grpc-gateway turns the code into the HTTP status (InvalidArgument 400,
// Unauthenticated 401, PermissionDenied 403, NotFound 404, AlreadyExists 409, ResourceExhausted 429,
// Unavailable 503). Errors nobody planned for become Internal without their text, which is logged
// instead (internal is true).
func toStatus(err error) (st *status.Status, internal bool) {
	if err == nil {
		return nil, false
	}
	if s, ok := status.FromError(err); ok {
		return s, false
	}
	var ve *gateway.ValidationError
	var fe *fieldError
	switch {
	case errors.As(err, &ve):
		return status.New(codes.InvalidArgument, ve.Field+": "+ve.Reason), false
	case errors.As(err, &fe):
		return status.New(codes.InvalidArgument, fe.Error()), false
	case errors.Is(err, gateway.ErrNoRoute):
		return status.New(codes.FailedPrecondition, "destination: no route for this destination"), false
	case errors.Is(err, gateway.ErrThrottled):
		return status.New(codes.ResourceExhausted, "account over its message rate; retry later"), false
	case errors.Is(err, gateway.ErrUnknownUpstream):
		return status.New(codes.NotFound, "no such upstream"), false
	case errors.Is(err, gateway.ErrUnknownSession):
		return status.New(codes.NotFound, "no such session"), false
	case errors.Is(err, store.ErrNotFound):
		return status.New(codes.NotFound, "not found"), false
	case errors.Is(err, store.ErrExists):
		return status.New(codes.AlreadyExists, "already exists"), false
	case errors.Is(err, store.ErrInvalid):
		// The handlers check what they store in the API's terms; the store's own text names its
		// records and keys, not the request's fields.
		return status.New(codes.InvalidArgument, "a name or value in the request cannot be stored"), false
	case errors.Is(err, store.ErrUnavailable):
		return status.New(codes.Unavailable, "store unavailable; retry later"), false
	case errors.Is(err, context.Canceled):
		return status.New(codes.Canceled, "canceled"), false
	case errors.Is(err, context.DeadlineExceeded):
		return status.New(codes.DeadlineExceeded, "deadline exceeded"), false
	}
	return status.New(codes.Internal, "internal error"), true
}

// invalid is an InvalidArgument naming field.
func invalid(field, format string, args ...any) error {
	return status.Error(codes.InvalidArgument, field+": "+fmt.Sprintf(format, args...))
}

// maxDescription bounds the descriptions of accounts, routes and webhooks, in characters.
const maxDescription = 256

func checkDescription(field, d string) error {
	if utf8.RuneCountInString(d) > maxDescription {
		return invalid(field, "at most %d characters", maxDescription)
	}
	return nil
}
