//! The governance tables, under CCF's names so CCF's tools find them, and their encodings.
//! coco-node should take its governance table names from here (it may depend on coco-gov;
//! coco-gov may not depend on it).
//!
//! Keys of per-identity tables are the id as lowercase hex text bytes; singleton tables use
//! [`SINGLETON_KEY`]. Values are JSON unless noted.

use coco_kv::MapName;

/// Key of every singleton table: eight zero bytes, as in CCF.
pub const SINGLETON_KEY: &[u8] = &[0; 8];

/// Member certificates: value = PEM (raw text).
pub const MEMBERS_CERTS: &str = "public:ccf.gov.members.certs";
/// Member information: `{"status": "Accepted"|"Active", "member_data", "recovery_role"?}`.
pub const MEMBERS_INFO: &str = "public:ccf.gov.members.info";
/// Members' RSA encryption public keys (recovery members only): value = PEM (raw text).
pub const MEMBERS_ENCRYPTION_PUBLIC_KEYS: &str = "public:ccf.gov.members.encryption_public_keys";
/// The state digest last issued to each member: `{"state_digest": "<hex>"}`.
pub const MEMBERS_ACKS: &str = "public:ccf.gov.members.acks";
/// User certificates: value = PEM (raw text).
pub const USERS_CERTS: &str = "public:ccf.gov.users.certs";
/// User information: `{"user_data"}`.
pub const USERS_INFO: &str = "public:ccf.gov.users.info";
/// Nodes: key = node id hex, `{"status": "Pending"|"Trusted"|"Retired", …}`.
pub const NODES_INFO: &str = "public:ccf.gov.nodes.info";
/// Allowed code measurements of virtual nodes: key = measurement hex, `"AllowedToJoin"`.
pub const NODES_VIRTUAL_MEASUREMENTS: &str = "public:ccf.gov.nodes.virtual.measurements";
/// Allowed code measurements of SEV-SNP nodes: key = measurement hex, `"AllowedToJoin"`.
pub const NODES_SNP_MEASUREMENTS: &str = "public:ccf.gov.nodes.snp.measurements";
/// Allowed code ids (MRENCLAVE) of SGX nodes: key = measurement hex, `"AllowedToJoin"`.
pub const NODES_CODE_IDS: &str = "public:ccf.gov.nodes.code_ids";
/// The TEE manifest (Coco's; CCF has no such table): key = platform, `"AllowedToJoin"`.
pub const NODES_PLATFORMS: &str = "public:ccf.gov.nodes.platforms";
/// Service identity and status (singleton).
pub const SERVICE_INFO: &str = "public:ccf.gov.service.info";
/// Service configuration (singleton): `{"recovery_threshold",
/// "recent_cose_proposals_window_size", "maximum_node_certificate_validity_days", …}`.
pub const SERVICE_CONFIG: &str = "public:ccf.gov.service.config";
/// The voting policy in force (singleton, Coco's): `{"kind": "majority"|"unanimous"|
/// "one_of_n"}` or `{"kind": "m_of_n", "m": M}`; absent = majority.
pub const VOTING_POLICY: &str = "public:ccf.gov.voting_policy";
/// The constitution (singleton): a JSON string holding the ES module source.
pub const CONSTITUTION: &str = "public:ccf.gov.constitution";
/// Proposals: key = proposal id hex, value = the raw proposal body (JSON bytes).
pub const PROPOSALS: &str = "public:ccf.gov.proposals";
/// Proposal state: key = proposal id hex, `{"proposer_id", "state", "ballots",
/// "final_votes"?, "vote_failures"?, "failure"?}`.
pub const PROPOSALS_INFO: &str = "public:ccf.gov.proposals_info";
/// Replay window of proposals: key = `"<10-digit created_at>:<hex sha256(signature)>"`,
/// value = the proposal id (JSON string).
pub const COSE_RECENT_PROPOSALS: &str = "public:ccf.gov.cose_recent_proposals";
/// The last accepted signed request of each member: key = member id hex, value = the COSE
/// Sign1 envelope bytes. One entry per member; the ledger keeps every version.
pub const HISTORY: &str = "public:ccf.gov.history";
/// The latest node signature (singleton), read for the state digest of new members.
pub const SIGNATURES: &str = "public:ccf.internal.signatures";

/// The [`MapName`] of one of this module's constants (all valid; a test checks each).
pub(crate) fn map(name: &str) -> MapName {
    MapName::new(name).expect("governance table names are valid map names")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_name_is_a_valid_public_map() {
        for name in [
            MEMBERS_CERTS,
            MEMBERS_INFO,
            MEMBERS_ENCRYPTION_PUBLIC_KEYS,
            MEMBERS_ACKS,
            USERS_CERTS,
            USERS_INFO,
            NODES_INFO,
            NODES_VIRTUAL_MEASUREMENTS,
            NODES_SNP_MEASUREMENTS,
            NODES_CODE_IDS,
            NODES_PLATFORMS,
            SERVICE_INFO,
            SERVICE_CONFIG,
            VOTING_POLICY,
            CONSTITUTION,
            PROPOSALS,
            PROPOSALS_INFO,
            COSE_RECENT_PROPOSALS,
            HISTORY,
            SIGNATURES,
        ] {
            assert!(map(name).is_public(), "{name}");
        }
    }
}
