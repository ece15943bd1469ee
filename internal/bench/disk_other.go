//go:build !(linux || darwin)

package bench

import "errors"

// freeBytes cannot tell free space on this system.
func freeBytes(string) (uint64, error) {
	return 0, errors.ErrUnsupported
}
