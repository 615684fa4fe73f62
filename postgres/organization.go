package postgres

import (
	"strconv"
	"time"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/store"
)

// now returns the clock in UTC at the precision of timestamptz.
func (db *DB) now() time.Time { return db.Now().UTC().Truncate(time.Microsecond) }

// listQuery adds keyset paging on a text key column to a query; args
// holds the query's parameters so far.
func listQuery(base, key string, args []any, f trail.ListFilter) (string, []any) {
	return store.ListQuery(base, key, args, f, nil, param)
}

// param is PostgreSQL's n-th query parameter.
func param(n int) string { return "$" + strconv.Itoa(n) }
