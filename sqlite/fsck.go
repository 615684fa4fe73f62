package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"unicode"

	"github.com/trail-audit/trail"
)

// searchCheck compares events' entries in the contentless full-text index
// with the words they should hold (fsck, SPEC §6). FTS5 cannot give an
// entry's words back, so it asks two questions of its own engine: does the
// entry match every word of the text (MATCH on its rowid), and does it hold
// as many tokens as FTS5 makes of the text (its docsize, against that of
// the same text in a scratch FTS5 table in memory).
type searchCheck struct {
	thorough       bool      // match every word, not only count them
	match, docsize *sql.Stmt // in the scan's transaction
	mem            *sql.DB   // the scratch table's database
	conn           *sql.Conn
	ins, size      *sql.Stmt // on the scratch table
	rowid          int64     // the scratch row of the next text
}

// scratchRows is how many texts the scratch table holds before it is
// emptied.
const scratchRows = 4096

func newSearchCheck(ctx context.Context, tx *sql.Tx) (*searchCheck, error) {
	c := &searchCheck{}
	var err error
	if c.match, err = tx.PrepareContext(ctx, `SELECT count(*) FROM events_fts WHERE events_fts MATCH ? AND rowid = ?`); err != nil {
		return nil, fmt.Errorf("full-text check: %w", err)
	}
	if c.docsize, err = tx.PrepareContext(ctx, `SELECT sz FROM events_fts_docsize WHERE id = ?`); err != nil {
		return nil, fmt.Errorf("full-text check: %w", err)
	}
	if c.mem, err = sql.Open("sqlite", "file:fsck?mode=memory"); err != nil {
		return nil, err
	}
	c.mem.SetMaxOpenConns(1)
	if c.conn, err = c.mem.Conn(ctx); err != nil {
		c.mem.Close()
		return nil, err
	}
	// The same definition as events_fts (0001_init.sql): the same tokenizer.
	if _, err := c.conn.ExecContext(ctx, `CREATE VIRTUAL TABLE scratch USING fts5 (body, content = '', contentless_delete = 1)`); err != nil {
		c.close()
		return nil, fmt.Errorf("full-text check: %w", err)
	}
	// One transaction for the whole check, never committed: the scratch
	// rows are tokenized, counted and thrown away.
	if _, err := c.conn.ExecContext(ctx, `BEGIN`); err != nil {
		c.close()
		return nil, err
	}
	for _, p := range []struct {
		stmt **sql.Stmt
		q    string
	}{
		{&c.ins, `INSERT INTO scratch (rowid, body) VALUES (?, ?)`},
		{&c.size, `SELECT sz FROM scratch_docsize WHERE id = ?`},
	} {
		if *p.stmt, err = c.conn.PrepareContext(ctx, p.q); err != nil {
			c.close()
			return nil, fmt.Errorf("full-text check: %w", err)
		}
	}
	return c, nil
}

func (c *searchCheck) close() {
	for _, s := range []*sql.Stmt{c.ins, c.size} {
		if s != nil {
			s.Close()
		}
	}
	if c.conn != nil {
		c.conn.Close()
	}
	c.mem.Close()
}

// check compares the entry of the event seq with text.
func (c *searchCheck) check(ctx context.Context, seq int64, text string) (string, error) {
	var got int64
	var sz []byte
	switch err := c.docsize.QueryRowContext(ctx, seq).Scan(&sz); {
	case err == sql.ErrNoRows:
		got = -1 // no entry
	case err != nil:
		return "", err
	default:
		got = fts5Varint(sz)
	}
	// Most texts FTS5 splits as the count below does; the scratch table,
	// FTS5 itself, decides whenever they disagree.
	want := countTokens(text)
	if want != got {
		var err error
		if want, err = c.tokens(ctx, text); err != nil {
			return "", err
		}
	}
	if got < 0 {
		if want == 0 {
			return "", nil
		}
		return trail.SearchMissing, nil
	}
	missing := got < want
	if q := matchAll(text); q != "" && !missing && c.thorough {
		var n int
		if err := c.match.QueryRowContext(ctx, q, seq).Scan(&n); err != nil {
			return "", fmt.Errorf("full-text check of seq %d: %w", seq, err)
		}
		missing = n == 0
	}
	switch extra := got > want; {
	case missing && extra:
		return trail.SearchDifferent, nil
	case missing:
		return trail.SearchMissing, nil
	case extra:
		return trail.SearchExtra, nil
	}
	return "", nil
}

// tokens returns how many tokens FTS5 makes of text.
func (c *searchCheck) tokens(ctx context.Context, text string) (int64, error) {
	c.rowid++
	if c.rowid > scratchRows {
		if _, err := c.conn.ExecContext(ctx, `INSERT INTO scratch (scratch) VALUES ('delete-all')`); err != nil {
			return 0, err
		}
		c.rowid = 1
	}
	if _, err := c.ins.ExecContext(ctx, c.rowid, text); err != nil {
		return 0, err
	}
	var sz []byte
	if err := c.size.QueryRowContext(ctx, c.rowid).Scan(&sz); err != nil {
		return 0, err
	}
	return fts5Varint(sz), nil
}

// matchAll is an FTS5 query for every word of text that has a token
// character: each a quoted string (a phrase of its tokens), all required.
func matchAll(text string) string {
	var parts []string
	seen := map[string]bool{}
	for _, w := range strings.Fields(text) {
		if seen[w] || strings.IndexFunc(w, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsNumber(r) }) < 0 {
			continue
		}
		seen[w] = true
		parts = append(parts, `"`+strings.ReplaceAll(w, `"`, `""`)+`"`)
	}
	return strings.Join(parts, " AND ")
}

// fts5Varint reads the first SQLite varint of b: a docsize row's token
// count of its one column.
func fts5Varint(b []byte) int64 {
	var v uint64
	for i := 0; i < len(b) && i < 9; i++ {
		if i == 8 {
			return int64(v<<8 | uint64(b[i]))
		}
		v = v<<7 | uint64(b[i]&0x7f)
		if b[i]&0x80 == 0 {
			break
		}
	}
	return int64(v)
}

// countTokens counts the tokens FTS5's unicode61 tokenizer makes of text
// in the common case: runs of letters, digits and private-use characters,
// with combining diacritical marks inside a run. It is a shortcut: where
// it differs from an entry's count, FTS5 counts again.
func countTokens(text string) int64 {
	var n int64
	in := false
	for _, r := range text {
		switch {
		case unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Co, r):
			if !in {
				n++
			}
			in = true
		case r >= 0x300 && r <= 0x36f:
		default:
			in = false
		}
	}
	return n
}
