//! Coco's deterministic fault simulator (development only).
//!
//! Three whole nodes — KV, ledger files, Merkle tree, signatures, governance, consensus —
//! run on one thread with tokio's paused clock, so time is simulated and a run is a
//! function of its seed: the seed drives the network (message loss, delay, reordering,
//! duplication, partitions and healing), crashes and restarts (with a torn last write),
//! the client workload, and openraft's own randomness. Each node's ledger `fdatasync`s
//! inline, so no thread of its own adds nondeterminism.
//!
//! After every step the simulator checks: at most one primary per view; an entry a node
//! reported committed never changes there; committed ledger prefixes are byte-identical
//! across nodes; log matching (an entry with the same TxId on two nodes is the same).
//! After healing and catching up: every transaction seen Committed is Committed, at the
//! same TxId, on every node, and its receipt verifies.
//!
//! `cargo run -p coco-sim -- --seeds N` runs seeds and prints the command replaying a
//! failing one.

// The simulator owns its runtime: it spawns tasks and sleeps, in simulated time.
#![allow(clippy::disallowed_methods)]

mod checks;
mod cluster;
mod net;

pub use cluster::{Report, SimError, run_seed};
