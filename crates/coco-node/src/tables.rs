//! The names of CCF's own tables, which Coco writes under the same names so that CCF's
//! auditing tools find them, and the key encodings they use. Governance tables are named
//! once, in `coco_gov::tables`; this module re-exports those the node writes and adds the
//! node's own (`public:ccf.internal.*`, endorsed certificates).

pub use coco_gov::tables::{
    MEMBERS_CERTS, MEMBERS_INFO, NODES_INFO, SERVICE_INFO, SIGNATURES, SINGLETON_KEY, USERS_CERTS,
    USERS_INFO,
};

/// Node certificates endorsed by the service key: key = node id hex, value = PEM.
pub const NODES_ENDORSED_CERTIFICATES: &str = "public:ccf.gov.nodes.endorsed_certificates";
/// Service COSE Sign1 over the Merkle root (singleton, JSON string of base64).
pub const COSE_SIGNATURES: &str = "public:ccf.internal.cose_signatures";
/// A rekey's record of the previous ledger secret, wrapped (AES-256-GCM) under the new one
/// (singleton JSON `{"version", "previous_valid_from", "encrypted_ledger_secret"}`): with the
/// newest secret, every older one can be unwrapped in turn.
pub const HISTORICAL_ENCRYPTED_LEDGER_SECRET: &str =
    "public:ccf.internal.historical_encrypted_ledger_secret";
/// The evidence of a snapshot (singleton JSON `{"hash", "version"}`): the transaction
/// writing it has the snapshot's SHA-256 as its claims digest, so its receipt, appended to
/// the snapshot file, proves the snapshot is the service's state at `version`.
pub const SNAPSHOT_EVIDENCE: &str = "public:ccf.internal.snapshot_evidence";
/// The serialised Merkle tree at a signature (singleton).
pub const TREE: &str = "public:ccf.internal.tree";
/// Coco's own: a consensus configuration (singleton JSON `{"configs", "nodes"}`). An entry
/// writing it writes nothing else, so every node seals it identically.
pub const CONSENSUS_MEMBERSHIP: &str = "public:coco.consensus.membership";
