// Package tlog makes each organization's log a transparency log (SPEC §6):
// an RFC 6962 Merkle tree over the events' leaf hashes, stored as C2SP
// tiles by a trail.LogStore, with C2SP checkpoints signed as C2SP signed
// notes (Ed25519).
//
// The Integrator runs in every `trail serve` process: it adds the events
// that no checkpoint covers yet to their organization's tree and signs a
// checkpoint, within Interval. The Prover answers inclusion and
// consistency proofs from the tiles in O(log n) reads. Verify checks an
// NDJSON file of stored events against a checkpoint, offline; Fsck
// recomputes every tree from the database.
//
//	signer, vkey, err := tlog.LoadOrCreateKey("trail-data/log.key", "trail.example.com")
//	ig := &tlog.Integrator{Store: store, Signer: signer, Origin: "trail.example.com"}
//	ig.Start()
//	defer ig.Stop()
package tlog
