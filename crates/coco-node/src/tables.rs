//! The names of CCF's own tables, which Coco writes under the same names so that CCF's
//! auditing tools find them, and the key encodings they use.

/// Key of every singleton table (one value per table): eight zero bytes, as in CCF.
pub const SINGLETON_KEY: &[u8] = &[0; 8];

/// Service identity and status (singleton): JSON `{"cert", "status", …}`.
pub const SERVICE_INFO: &str = "public:ccf.gov.service.info";
/// Nodes: key = node id hex, JSON `{"status", …}`.
pub const NODES_INFO: &str = "public:ccf.gov.nodes.info";
/// Node certificates endorsed by the service key: key = node id hex, value = PEM.
pub const NODES_ENDORSED_CERTIFICATES: &str = "public:ccf.gov.nodes.endorsed_certificates";
/// Member certificates: key = member id hex, value = PEM.
pub const MEMBERS_CERTS: &str = "public:ccf.gov.members.certs";
/// Member information: key = member id hex, JSON `{"status", "member_data"}`.
pub const MEMBERS_INFO: &str = "public:ccf.gov.members.info";
/// User certificates: key = user id hex, value = PEM.
pub const USERS_CERTS: &str = "public:ccf.gov.users.certs";
/// User information: key = user id hex, JSON `{"user_data"}`.
pub const USERS_INFO: &str = "public:ccf.gov.users.info";
/// Node signature over the Merkle root (singleton JSON), written by signature transactions.
pub const SIGNATURES: &str = "public:ccf.internal.signatures";
/// Service COSE Sign1 over the Merkle root (singleton, JSON string of base64).
pub const COSE_SIGNATURES: &str = "public:ccf.internal.cose_signatures";
/// The serialised Merkle tree at a signature (singleton).
pub const TREE: &str = "public:ccf.internal.tree";
