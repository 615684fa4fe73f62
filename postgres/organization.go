package postgres

import (
	"strconv"
	"time"

	"github.com/trail-audit/trail"
)

// now returns the clock in UTC at the precision of timestamptz.
func (db *DB) now() time.Time { return db.Now().UTC().Truncate(time.Microsecond) }

// listQuery adds keyset paging on a text key column to a query; args
// holds the query's parameters so far.
func listQuery(base, key string, args []any, f trail.ListFilter) (string, []any) {
	if c, greater, ok := f.Bound(); ok {
		op := "<"
		if greater {
			op = ">"
		}
		args = append(args, c)
		base += " AND " + key + " " + op + " $" + strconv.Itoa(len(args))
	}
	dir := "DESC"
	if f.ScanAscending() {
		dir = "ASC"
	}
	return base + " ORDER BY " + key + " " + dir + " LIMIT " + strconv.Itoa(f.PageLimit()+1), args
}
