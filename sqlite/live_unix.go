//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// shmDMS is the byte of a WAL database's shared-memory file (-shm) on
// which every connection of SQLite's unix VFS holds a read lock while it
// has the database open (the "dead man switch", UNIX_SHM_DMS in
// os_unix.c: (22+8)*4 + 8).
const shmDMS = 128

// Live reports whether a process has the WAL database at path open: it
// asks the kernel (F_GETLK) whether a write lock on the -shm file's
// DMS byte would conflict with one held. It sees every SQLite program on
// this machine (trail serve, the sqlite3 shell, Litestream), not only
// Trail; a database that is not in WAL mode, or whose -shm file is
// missing, is not open in WAL mode by anyone.
func Live(path string) (bool, error) {
	f, err := os.OpenFile(path+"-shm", os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("is %s in use: %w", path, err)
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart, Start: shmDMS, Len: 1}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil {
		return false, fmt.Errorf("is %s in use: %w", path, err)
	}
	return lk.Type != syscall.F_UNLCK, nil
}
