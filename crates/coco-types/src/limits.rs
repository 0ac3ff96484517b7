//! Every bound a node enforces, in one validated struct.
//!
//! A node reads these from its TOML configuration (`[limits]`) and calls
//! [`Limits::validate`] before it starts; nothing else in Coco invents a bound.

use serde::{Deserialize, Serialize};

/// The bounds a node enforces on its inputs, queues and files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest HTTP request body accepted, in bytes (413 beyond).
    pub request_body_bytes_max: u64,
    /// Largest serialised write set of one transaction, in bytes.
    pub write_set_bytes_max: u64,
    /// Concurrent client sessions (TLS connections); further connections wait in the
    /// kernel's accept queue.
    pub sessions_max: u64,
    /// Transactions executed but not yet covered by a durable signature; writes beyond
    /// get 503 until the ledger catches up.
    pub pending_txs_max: u64,
    /// A signature transaction is emitted after this many transactions…
    pub sig_tx_interval: u64,
    /// …or after this many milliseconds with unsigned transactions, whichever first.
    pub sig_ms_interval: u64,
    /// A ledger chunk is closed (at the next signature) once it reaches this size.
    pub ledger_chunk_bytes: u64,
    /// Re-executions of a handler whose transaction conflicted before it gives up.
    pub tx_retries_max: u64,
    /// Items returned by one page of a range listing.
    pub page_items_max: u64,
    /// Longest a commit-blocking request waits for its commit, in milliseconds.
    pub commit_wait_ms_max: u64,
    /// How often the primary sends heartbeats to the backups, in milliseconds.
    pub heartbeat_ms: u64,
    /// A backup that hears nothing from the primary for a random time between this…
    pub election_timeout_min_ms: u64,
    /// …and this, in milliseconds, starts an election.
    pub election_timeout_max_ms: u64,
    /// Most entries one replication message carries (flow control).
    pub replication_entries_max: u64,
    /// A snapshot is taken at the first signature at or after each multiple of this many
    /// seqnos (CCF's `snapshots.tx_count`): nodes start from the newest committed one.
    pub snapshot_tx_interval: u64,
    /// Committed snapshots a node keeps on disk (older ones are deleted).
    pub snapshots_kept: u64,
}

/// Why a set of limits was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("limit {name} = {value} is out of range [{min}, {max}]")]
pub struct LimitsError {
    /// The offending field.
    pub name: &'static str,
    /// Its value.
    pub value: u64,
    /// Smallest accepted value.
    pub min: u64,
    /// Largest accepted value.
    pub max: u64,
}

impl LimitsError {
    /// `Ok` if `value` lies in `[min, max]`, else the error naming the field: the one range
    /// check every limits struct (node, JavaScript, governance) validates with.
    ///
    /// # Errors
    /// The value is out of range.
    pub fn check(name: &'static str, value: u64, min: u64, max: u64) -> Result<(), Self> {
        if (min..=max).contains(&value) { Ok(()) } else { Err(Self { name, value, min, max }) }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            request_body_bytes_max: 1 << 20,
            write_set_bytes_max: 8 << 20,
            sessions_max: 1024,
            pending_txs_max: 65_536,
            sig_tx_interval: 5000,
            sig_ms_interval: 100,
            ledger_chunk_bytes: 5 << 20,
            tx_retries_max: 16,
            page_items_max: 1000,
            commit_wait_ms_max: 10_000,
            heartbeat_ms: 50,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            replication_entries_max: 1000,
            snapshot_tx_interval: 10_000,
            snapshots_kept: 2,
        }
    }
}

impl Limits {
    /// Checks every bound against its sane range.
    ///
    /// # Errors
    /// The first field out of range.
    pub fn validate(&self) -> Result<(), LimitsError> {
        let check = LimitsError::check;
        check("request_body_bytes_max", self.request_body_bytes_max, 1024, 1 << 30)?;
        check("write_set_bytes_max", self.write_set_bytes_max, 1024, 1 << 30)?;
        check("sessions_max", self.sessions_max, 1, 1 << 20)?;
        check("pending_txs_max", self.pending_txs_max, 1, 1 << 24)?;
        check("sig_tx_interval", self.sig_tx_interval, 1, 1 << 20)?;
        check("sig_ms_interval", self.sig_ms_interval, 1, 3_600_000)?;
        check("ledger_chunk_bytes", self.ledger_chunk_bytes, 4096, 1 << 34)?;
        check("tx_retries_max", self.tx_retries_max, 1, 1000)?;
        check("page_items_max", self.page_items_max, 1, 1 << 20)?;
        check("commit_wait_ms_max", self.commit_wait_ms_max, 1, 600_000)?;
        check("heartbeat_ms", self.heartbeat_ms, 1, 60_000)?;
        // An election must not start between two heartbeats a backup should have heard.
        let min = self.heartbeat_ms.saturating_mul(2);
        check("election_timeout_min_ms", self.election_timeout_min_ms, min, 600_000)?;
        let min = self.election_timeout_min_ms.saturating_add(1);
        check("election_timeout_max_ms", self.election_timeout_max_ms, min, 600_000)?;
        check("replication_entries_max", self.replication_entries_max, 1, 1 << 20)?;
        check("snapshot_tx_interval", self.snapshot_tx_interval, 1, 1 << 40)?;
        check("snapshots_kept", self.snapshots_kept, 1, 1000)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zero_interval_is_not() {
        Limits::default().validate().unwrap();
        let limits = Limits { sig_tx_interval: 0, ..Limits::default() };
        assert_eq!(limits.validate().unwrap_err().name, "sig_tx_interval");
    }

    #[test]
    fn elections_wait_longer_than_heartbeats_and_the_range_is_ordered() {
        let limits = Limits { heartbeat_ms: 200, ..Limits::default() };
        assert_eq!(limits.validate().unwrap_err().name, "election_timeout_min_ms");
        let limits = Limits { election_timeout_max_ms: 300, ..Limits::default() };
        assert_eq!(limits.validate().unwrap_err().name, "election_timeout_max_ms");
    }
}
