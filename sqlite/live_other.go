//go:build !unix

package sqlite

import "errors"

// Live cannot tell on this system whether another process has the
// database open; Restore refuses rather than guess.
func Live(path string) (bool, error) {
	return false, errors.New("restore is supported on Linux and macOS only: this system cannot tell whether the database is in use")
}
