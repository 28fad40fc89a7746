package purplerain

// All cgo flags of the package come from pkg-config (purple_rain.pc): an installed library
// (scripts/install.sh writes PREFIX/lib/pkgconfig/purple_rain.pc; set PKG_CONFIG_PATH when the
// prefix is not one pkg-config searches), or, for development in this checkout,
// PKG_CONFIG_PATH=<repository>/bindings/go/pkgconfig, whose .pc names include/ and
// target/release/ with an rpath. See README.md.

/*
#cgo pkg-config: purple_rain
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"unsafe"
)

// ABIVersion is the C ABI version of the loaded library (pr_abi_version). The package is
// written against HeaderABIVersion; New refuses a library whose version differs.
func ABIVersion() uint32 { return uint32(C.pr_abi_version()) }

// HeaderABIVersion is PR_ABI_VERSION of the header this package was compiled with.
const HeaderABIVersion = uint32(C.PR_ABI_VERSION)

// Version is the library's crate version, e.g. "0.1.0" (pr_version).
func Version() string { return C.GoString(C.pr_version()) }

// maxShards is PR_MAX_SHARDS: a buffer of this many ids always holds every shard id.
const maxShards = int(C.PR_MAX_SHARDS)

// check turns a wrapper's result into nil or an *Error carrying the message the library set on
// the thread that made the call (copied by the C side in the same crossing, freed here).
func check(op string, r C.gopr_ret) error {
	if r.status == C.PR_OK {
		return nil
	}
	return failure(op, r)
}

// failure is the cold half of check, kept out of line so check stays small enough to inline.
func failure(op string, r C.gopr_ret) error {
	msg := ""
	if r.msg != nil {
		msg = C.GoString(r.msg)
		C.free(unsafe.Pointer(r.msg))
	}
	return newError(op, Status(r.status), msg)
}

// bytesPtr is the address of b's first byte for C, or nil for an empty slice. Passing it is
// allowed by the cgo pointer rules: a []byte holds no Go pointers, and C does not keep it past
// the call (the library copies what it retains).
func bytesPtr(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0]))
}

// statusName is pr_status_name: the C name of a status, "PR_UNKNOWN_STATUS" for other numbers.
func statusName(s Status) string { return C.GoString(C.pr_status_name(C.pr_status(s))) }

// libraryStatuses is every status the header declares (pr_status_ALL), in number order,
// PR_OK first.
func libraryStatuses() []Status {
	var all *C.pr_status
	n := C.gopr_statuses(&all)
	statuses := make([]Status, 0, int(n))
	for _, s := range unsafe.Slice(all, int(n)) {
		statuses = append(statuses, Status(s))
	}
	return statuses
}
