package trail

import (
	"context"
	"time"
)

// Each organization's events form an RFC 6962 Merkle tree whose leaves are
// the events' leaf hashes in index order (SPEC §6). The tree is stored as
// C2SP tlog-tiles: a tile of level L holds up to TileWidth hashes of tree
// level L×TileHeight, so that any node of the tree is recomputed from one
// tile and a proof costs O(log n) reads.
const (
	TileHeight = 8
	TileWidth  = 1 << TileHeight
	HashSize   = 32
)

// Tile is one stored tile of an organization's tree: the hashes of the
// complete nodes number Index×TileWidth … at tree level Level×TileHeight,
// concatenated. A partial tile (fewer than TileWidth hashes) grows until
// it is full; its first hashes never change.
type Tile struct {
	Level  int
	Index  int64
	Hashes []byte
}

// Width returns the number of hashes the tile holds.
func (t *Tile) Width() int { return len(t.Hashes) / HashSize }

// TileID names a tile.
type TileID struct {
	Level int
	Index int64
}

// Checkpoint is a signed statement of the size and root hash of an
// organization's tree: a C2SP tlog-checkpoint in a C2SP signed note.
type Checkpoint struct {
	OrganizationID string
	Size           int64
	Root           [HashSize]byte
	Note           string // the signed note, verbatim
	CreatedAt      time.Time
}

// CheckpointStep moves an organization's tree from PrevSize to
// Checkpoint.Size (LogStore.AddCheckpoints).
type CheckpointStep struct {
	PrevSize   int64
	Tiles      []*Tile
	Checkpoint *Checkpoint
	Stored     bool  // set by AddCheckpoints
	Err        error // set by AddCheckpoints when this step failed alone (the others are stored)
}

// LogHead is how far an organization's log and its tree are: events
// [TreeSize, LogSize) are stored but in no checkpoint yet. HasCheckpoint
// is false until the first checkpoint (of the empty tree, for a new
// organization) is signed.
type LogHead struct {
	OrganizationID string
	LogSize        int64
	TreeSize       int64
	HasCheckpoint  bool
}

// LogRow is an event row as stored, read by fsck: the JSON document, the
// leaf hash stored beside it and what the driver found wrong with the
// row's other columns (each derived from the document when the event was
// written).
type LogRow struct {
	Index    int64
	ID       string
	Data     []byte // the stored event as JSON
	LeafHash [HashSize]byte
	Purged   bool   // the contents were removed by retention; Data is nil
	Mismatch string // "" when every derived column agrees with Data

	// What the secondary indexes that read paths rely on hold for the
	// event, read in the scan's snapshot when LogScan.Indexes is set, for
	// fsck to compare with Data (SPEC §6); unset for a purged event.
	//
	// Targets are the event's rows in the target index (ID and Type).
	Targets []Target
	// Search compares the event's entry in the full-text index with the
	// words of text (SearchText of the document), as the driver's engine
	// splits them: "" when it holds exactly those, else SearchMissing,
	// SearchExtra or SearchDifferent.
	Search func(text string) (string, error)
}

// What LogRow.Search finds.
const (
	SearchMissing   = "missing"   // words of the document are not in the index
	SearchExtra     = "extra"     // the index holds words the document does not
	SearchDifferent = "different" // both
)

// LogIndexes is what an organization's secondary indexes hold as a
// whole, read in the snapshot of a ScanLog, for fsck (SPEC §6).
type LogIndexes struct {
	// Counts are the hourly counts the histogram sums (event_counts),
	// rows of 0 left out.
	Counts map[HourAction]int64
	// Days counts the events by the day of their occurred_at, as the
	// by-day index that periods are read by holds them (days since 1970).
	Days map[int64]int64
	// Actions is the organization's actions catalogue, which expands
	// action prefixes (org_actions).
	Actions []string
	// OrphanTargets counts rows of the target index whose event is not
	// in the log (or was purged).
	OrphanTargets int64
}

// HourAction keys an hourly count: occurred_at in whole UTC hours since
// 1970, and the action.
type HourAction struct {
	Hour   int64
	Action string
}

// LogScan says what ScanLog reads.
type LogScan struct {
	From int64 // the first index
	// Row is called for each event row, in index order.
	Row func(*LogRow) error
	// Indexes, when set, asks for the secondary indexes too: each row
	// comes with its Targets and Search, and Indexes is called after the
	// last row with what the organization's indexes hold as a whole.
	Indexes func(*LogIndexes) error
	// Thorough asks Search to compare every word where the driver's
	// quick check compares less (SQLite: that the entry holds as many
	// tokens as the text, not which), at a higher cost.
	Thorough bool
}

// LogStore keeps the trees, tiles and checkpoints of the organizations'
// logs. The Merkle logic lives above it (package tlog); a driver stores
// and reads.
type LogStore interface {
	// PendingLogs returns up to limit organizations with IDs after after,
	// in ID order, whose log has events that no checkpoint covers or that
	// have no checkpoint yet.
	PendingLogs(ctx context.Context, after string, limit int) ([]LogHead, error)

	// LogHead returns how far an organization's log and tree are.
	// ENOTFOUND for an unknown organization.
	LogHead(ctx context.Context, orgID string) (*LogHead, error)

	// LeafHashes returns the leaf hashes of events [from, to) in index
	// order, from the tiles where the events were purged.
	LeafHashes(ctx context.Context, orgID string, from, to int64) ([][HashSize]byte, error)

	// Tiles returns the stored tiles among ids, in any order; a tile not
	// stored is left out.
	Tiles(ctx context.Context, orgID string, ids []TileID) ([]*Tile, error)

	// AddCheckpoints stores each step in one transaction: its tiles (new
	// or grown) and its checkpoint, moving the organization's tree to the
	// checkpoint's size, if the tree is still at the step's PrevSize (-1:
	// no checkpoint yet). A step whose tree moved (another integrator was
	// first) is left out and its Stored stays false; the others are
	// stored. A step that fails alone (a checkpoint row of its size exists
	// already) gets its Err and is left out too. One transaction for all
	// organizations of a round keeps the integrator from queuing for the
	// database once per organization.
	AddCheckpoints(ctx context.Context, steps []*CheckpointStep) error

	// LatestCheckpoint returns the organization's newest checkpoint;
	// ENOTFOUND if it has none yet.
	LatestCheckpoint(ctx context.Context, orgID string) (*Checkpoint, error)

	// FindCheckpoint returns the checkpoint of the given tree size;
	// ENOTFOUND if none was signed at that size.
	FindCheckpoint(ctx context.Context, orgID string, size int64) (*Checkpoint, error)

	// FindCheckpoints returns up to limit checkpoints of sizes above
	// after, in size order.
	FindCheckpoints(ctx context.Context, orgID string, after int64, limit int) ([]*Checkpoint, error)

	// ScanLog calls scan.Row for each event row of the organization from
	// index scan.From on, in index order, including rows that do not fit
	// the log (a gap or an index beyond the head shows as such), all in
	// one read snapshot that takes no write lock (Trail may be serving).
	ScanLog(ctx context.Context, orgID string, scan LogScan) error

	// RetentionLogs returns the organizations whose tree has events,
	// with their retention, for the purge.
	RetentionLogs(ctx context.Context) ([]LogRetention, error)

	// CheckpointAtOrBefore returns the organization's newest checkpoint
	// created at or before t; ENOTFOUND if there is none.
	CheckpointAtOrBefore(ctx context.Context, orgID string, t time.Time) (*Checkpoint, error)

	// Purgeable reports whether an event within the bound has contents
	// to purge.
	Purgeable(ctx context.Context, b PurgeBound) (bool, error)

	// PurgeExpired removes the contents of the events within the bounds
	// (at most one a organization), keeping their id, index and leaf
	// hash, so that every checkpoint and proof stays valid (SPEC §6). The
	// rules of what may go are the caller's (tlog.Purger); a driver may
	// remove the rows of a whole period at once (PostgreSQL partitions)
	// only when each of them is within its organization's bound. Several
	// nodes may run it at once.
	PurgeExpired(ctx context.Context, bounds []PurgeBound) (*PurgeResult, error)

	// CountPurged counts the organization's purged events below index
	// below.
	CountPurged(ctx context.Context, orgID string, below int64) (int64, error)

	// FindPurgedEvents returns up to f.Limit events whose contents
	// retention removed, in index order, with their ID and Index (and
	// Purged set).
	FindPurgedEvents(ctx context.Context, f PurgedEventFilter) ([]*Event, error)

	// Setting returns an instance setting, "" when unset; SetSetting
	// stores it unless it is set already, and returns the value that is
	// stored (the first writer's).
	Setting(ctx context.Context, name string) (string, error)
	SetSetting(ctx context.Context, name, value string) (string, error)
}

// LogRetention is an organization's retention, for the purge.
type LogRetention struct {
	OrganizationID string
	RetentionDays  int
	TreeSize       int64
}

// PurgeResult says what a purge removed.
type PurgeResult struct {
	Events     int64 // events whose contents were removed
	Partitions int   // whole partitions dropped (PostgreSQL)
}

// Names of instance settings: what the database was first used with, so
// that a node with other keys refuses to start (SPEC §11).
const (
	SettingLogKey    = "log_verifier_key"
	SettingLogOrigin = "log_origin_prefix"
)

// InclusionProof proves that a leaf is in a tree of a size.
type InclusionProof struct {
	LeafIndex int64    `json:"leaf_index"`
	TreeSize  int64    `json:"tree_size"`
	Hashes    [][]byte `json:"hashes"`
}

// ConsistencyProof proves that a tree of size First is a prefix of the
// tree of size Second.
type ConsistencyProof struct {
	First  int64    `json:"first"`
	Second int64    `json:"tree_size"`
	Hashes [][]byte `json:"hashes"`
}

// ProofService answers for the organizations' trees.
type ProofService interface {
	// LatestCheckpoint as in LogStore.
	LatestCheckpoint(ctx context.Context, orgID string) (*Checkpoint, error)
	// FindCheckpoint as in LogStore.
	FindCheckpoint(ctx context.Context, orgID string, size int64) (*Checkpoint, error)
	// InclusionProof proves leaf index in the tree of treeSize, which must
	// be at most the latest checkpoint's size. EINVALID otherwise.
	InclusionProof(ctx context.Context, orgID string, index, treeSize int64) (*InclusionProof, error)
	// LatestInclusionProof proves leaf index in the tree of the latest
	// checkpoint and returns that checkpoint with it (one read of it).
	// The proof is nil when the leaf is not in that tree yet; ENOTFOUND
	// when no checkpoint is signed.
	LatestInclusionProof(ctx context.Context, orgID string, index int64) (*Checkpoint, *InclusionProof, error)
	// ConsistencyProof proves that the tree of size first is a prefix of
	// the one of size second (second at most the latest checkpoint's).
	ConsistencyProof(ctx context.Context, orgID string, first, second int64) (*ConsistencyProof, error)
	// VerifierKey returns the checkpoints' verifier key (name+hash+key).
	VerifierKey() string
}
