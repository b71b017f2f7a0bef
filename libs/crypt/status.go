package crypt

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Status converts a key failure to the gRPC status a service returns for
// it, and reports whether err was one: a disabled, revoked or missing KEK
// (or a reference no KMS serves) is FAILED_PRECONDITION, since the tenant's
// key must be restored before anything is served; an object that does not
// authenticate or parse is DATA_LOSS. The message names the tenant, the
// key and what is wrong, and nothing else (no object key, no key file path,
// no KMS request id): log err itself for that. Other errors return
// (nil, false).
func Status(err error) (*status.Status, bool) {
	var code codes.Code
	var what error
	switch {
	case err == nil:
		return nil, false
	case errors.Is(err, ErrKeyDisabled):
		code, what = codes.FailedPrecondition, ErrKeyDisabled
	case errors.Is(err, ErrKeyNotFound):
		code, what = codes.FailedPrecondition, ErrKeyNotFound
	case errors.Is(err, ErrBadRef):
		code, what = codes.FailedPrecondition, ErrBadRef
	case errors.Is(err, ErrAuth):
		code, what = codes.DataLoss, ErrAuth
	case errors.Is(err, ErrCorrupt):
		code, what = codes.DataLoss, ErrCorrupt
	default:
		return nil, false
	}
	msg := "customer-managed key: " + what.Error()
	var ke *KeyError
	if errors.As(err, &ke) {
		if ke.Ref != "" {
			msg = fmt.Sprintf("key %s: %s", ke.Ref, what)
		}
		if ke.HasTenant {
			msg = fmt.Sprintf("tenant %d: %s", ke.Tenant, msg)
		}
	}
	if code == codes.FailedPrecondition {
		msg += " (the tenant is not served until its key is enabled again)"
	}
	return status.New(code, msg), true
}
