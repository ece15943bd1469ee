//go:build linux || darwin

package bench

import "syscall"

// freeBytes returns how many bytes the file system holding dir has free
// for an unprivileged user.
func freeBytes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}
