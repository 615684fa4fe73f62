// Package export writes organizations' exports (SPEC §8): CSV, with every
// cell guarded against formula injection ([EscapeCell]), or NDJSON whose
// lines carry their inclusion proofs against the export's checkpoint, so
// that trail verify can check the file offline. [Write] reads the events a
// page at a time in index order and converts pages on every core; the
// [Worker] claims pending exports in the background (several nodes may
// share a database), writes their files and records the outcome.
//
//	src := export.Source{Events: events, Logs: logs}
//	rows, size, err := export.Write(ctx, f, src, ex, nil)
package export
