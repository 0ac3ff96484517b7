//! Joining a service (W25–W27): a new node presents its attestation evidence over TLS with
//! its own key; the primary checks the evidence against the code and TEE manifests and
//! records the node `Pending`; members pass `transition_node_to_trusted`, which endorses
//! the node's key with the service key; the node, asking again, receives what it needs to
//! take part (the service identity, its endorsed certificate, the ledger secrets) and then
//! catches up through consensus. The host adds Trusted nodes to the consensus
//! configuration.

use coco_attestation::{Evidence, Verified};
use coco_crypto::Certificate;
use coco_gov::tables::{NODES_PLATFORMS, NODES_VIRTUAL_MEASUREMENTS};
use coco_types::NodeId;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::Error;
use crate::node::Node;
use crate::node::signature::map;
use crate::tables;

/// What a joining node sends (`POST /node/join`); its key is the TLS client certificate's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The node's attestation evidence, bound to its key.
    pub quote_info: Evidence,
    /// Where other nodes reach it (`host:port`).
    pub node_to_node_address: String,
    /// The names its endorsed certificate must carry.
    pub subject_alt_names: Vec<String>,
}

/// What a Trusted node receives to take part in the service.
#[derive(Clone, Serialize, Deserialize)]
pub struct JoinMaterial {
    /// The node's id.
    pub node_id: NodeId,
    /// The service certificate (PEM).
    pub service_cert: String,
    /// The service key (PKCS#8 PEM): every node signs with it.
    pub service_key: String,
    /// The node's certificate, endorsed by the service key (PEM).
    pub node_cert: String,
    /// Every ledger secret, `(valid_from seqno, hex key)`, oldest first.
    pub ledger_secrets: Vec<(u64, String)>,
}

impl std::fmt::Debug for JoinMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinMaterial").field("node_id", &self.node_id).finish_non_exhaustive()
    }
}

/// Where a joining node stands.
#[derive(Debug)]
pub enum JoinState {
    /// Unknown: its evidence must be checked and it must be recorded.
    New,
    /// Recorded, waiting for members to trust it.
    Pending,
    /// Trusted: here is what it needs.
    Trusted(Box<JoinMaterial>),
}

/// Why a join was refused.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// The TLS client certificate is missing or unusable.
    #[error("join requests need the node's certificate as TLS client certificate: {0}")]
    Certificate(String),
    /// The evidence does not verify.
    #[error("invalid attestation: {0}")]
    Attestation(#[from] coco_attestation::AttestationError),
    /// The measurement is not in the code manifest.
    #[error("measurement {0} is not allowed to join (add_code_measurement)")]
    CodeNotAllowed(String),
    /// The platform is not in the TEE manifest.
    #[error("platform {0} is not allowed to join (add_platform)")]
    PlatformNotAllowed(String),
    /// The node was retired; it may not come back with the same key.
    #[error("node {0} is {1}")]
    NotJoinable(NodeId, String),
    /// The node failed.
    #[error(transparent)]
    Node(#[from] Error),
}

/// The node id of a TLS client certificate (SHA-256 of its public key).
///
/// # Errors
/// [`JoinError::Certificate`] for an unusable certificate.
pub fn node_id_of(cert_der: &[u8]) -> Result<(NodeId, Certificate), JoinError> {
    let cert =
        Certificate::from_der(cert_der).map_err(|e| JoinError::Certificate(e.to_string()))?;
    Ok((NodeId(coco_crypto::sha256(&cert.public_key_spki_der())), cert))
}

impl Node {
    /// Where the node with this certificate stands.
    ///
    /// # Errors
    /// [`JoinError::Certificate`]; [`JoinError::NotJoinable`] for a retired node.
    pub fn join_state(&self, cert_der: &[u8]) -> Result<(NodeId, JoinState), JoinError> {
        let (id, _) = node_id_of(cert_der)?;
        let mut tx = self.begin_read();
        let Some(info) = tx.get(&map(tables::NODES_INFO), id.to_hex().as_bytes()) else {
            return Ok((id, JoinState::New));
        };
        let info: Value = serde_json::from_slice(info).unwrap_or_default();
        match info["status"].as_str() {
            Some("Pending") => Ok((id, JoinState::Pending)),
            Some("Trusted") => {
                let endorsed = tx
                    .get(&map(tables::NODES_ENDORSED_CERTIFICATES), id.to_hex().as_bytes())
                    .map(|pem| String::from_utf8_lossy(pem).into_owned())
                    .ok_or_else(|| JoinError::NotJoinable(id, "Trusted but not endorsed".into()))?;
                Ok((id, JoinState::Trusted(Box::new(self.join_material(id, endorsed)))))
            }
            other => Err(JoinError::NotJoinable(id, other.unwrap_or("unknown").to_owned())),
        }
    }

    fn join_material(&self, node_id: NodeId, node_cert: String) -> JoinMaterial {
        let identity = &self.identity;
        JoinMaterial {
            node_id,
            service_cert: self.service_cert_pem.clone(),
            service_key: identity.service_key.to_pkcs8_pem(),
            node_cert,
            ledger_secrets: identity
                .ledger_secrets
                .iter()
                .map(|secret| (secret.valid_from.0, hex::encode(secret.key.raw())))
                .collect(),
        }
    }

    /// Checks a new node's evidence against the manifests in governance.
    ///
    /// # Errors
    /// [`JoinError`] naming the failed check.
    pub fn check_join(
        &self,
        cert_der: &[u8],
        request: &JoinRequest,
    ) -> Result<Verified, JoinError> {
        let (_, cert) = node_id_of(cert_der)?;
        let verified = coco_attestation::verify(&request.quote_info, &cert.public_key_spki_der())?;
        let mut tx = self.begin_read();
        if tx.get(&map(NODES_PLATFORMS), verified.platform.as_bytes()).is_none() {
            return Err(JoinError::PlatformNotAllowed(verified.platform.to_owned()));
        }
        let measurements = map(NODES_VIRTUAL_MEASUREMENTS);
        if tx.get(&measurements, verified.measurement.as_bytes()).is_none() {
            return Err(JoinError::CodeNotAllowed(verified.measurement.clone()));
        }
        Ok(verified)
    }

    /// Records a checked new node as `Pending` (CCF's `nodes.info` shape, plus what its
    /// endorsement needs later: its self-signed certificate goes under `join_cert`, not
    /// CCF's `cert`, which auditors read as an endorsement of its own). Run when consensus
    /// orders it.
    ///
    /// # Errors
    /// The checks of [`Self::check_join`] again (the manifests may have changed since), or
    /// the commit's.
    ///
    /// # Panics
    /// Never: the record is JSON built here.
    pub fn record_join(
        &mut self,
        cert_der: &[u8],
        request: &JoinRequest,
    ) -> Result<NodeId, JoinError> {
        self.check_join(cert_der, request)?;
        let (id, cert) = node_id_of(cert_der)?;
        let mut tx = self.begin()?;
        let info = json!({
            "status": "Pending",
            "quote_info": request.quote_info,
            "node_data": null,
            "retired_committed": false,
            "join_cert": cert.to_pem(),
            "node_to_node_address": request.node_to_node_address,
            "subject_alt_names": request.subject_alt_names,
        });
        let bytes = serde_json::to_vec(&info).expect("JSON values serialise");
        tx.put(&map(tables::NODES_INFO), id.to_hex().as_bytes(), bytes);
        self.commit(tx)?;
        tracing::info!(node = %id, address = %request.node_to_node_address, "node pending");
        Ok(id)
    }

    /// Endorses a node members just trusted: its key, certified by the service key, in
    /// `nodes.endorsed_certificates`. In the transaction of the accepting ballot.
    pub(crate) fn endorse_node(&self, tx: &mut coco_kv::Tx, node_id: &str) -> Result<(), Error> {
        let corrupt = |reason: &str| Error::Corrupt {
            what: format!("nodes.info of {node_id}"),
            reason: reason.to_owned(),
        };
        let info = tx
            .get(&map(tables::NODES_INFO), node_id.as_bytes())
            .ok_or_else(|| corrupt("missing"))?;
        let info: Value = serde_json::from_slice(info).map_err(|_| corrupt("not JSON"))?;
        let pem = info["join_cert"].as_str().ok_or_else(|| corrupt("no certificate"))?;
        let cert = Certificate::from_pem(pem).map_err(crate::error::crypto("node certificate"))?;
        let sans: Vec<String> = info["subject_alt_names"]
            .as_array()
            .map(|names| names.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        let key = cert.verifying_key().map_err(crate::error::crypto("node key"))?;
        let identity = &self.identity;
        let now_s = self.last_signature_ms / 1000;
        let endorsed = Certificate::endorse_node(
            &key,
            &identity.service_key,
            &identity.service_cert,
            &sans,
            now_s,
            crate::CERT_VALIDITY_DAYS,
        )
        .map_err(crate::error::crypto("endorsing a node"))?;
        tx.put(&map(tables::NODES_ENDORSED_CERTIFICATES), node_id.as_bytes(), endorsed.to_pem());
        tracing::info!(node = node_id, "node trusted and endorsed");
        Ok(())
    }

    /// Trusted nodes and their node-to-node addresses (the configuration the host keeps
    /// consensus in line with).
    #[must_use]
    pub fn trusted_nodes(&self) -> Vec<(NodeId, String)> {
        let mut tx = self.begin_read();
        let nodes = tx.range(
            &map(tables::NODES_INFO),
            std::ops::Bound::Unbounded,
            std::ops::Bound::Unbounded,
            TRUSTED_NODES_MAX,
        );
        nodes
            .into_iter()
            .filter_map(|(id, info)| {
                let info: Value = serde_json::from_slice(&info).ok()?;
                let id: NodeId = std::str::from_utf8(&id).ok()?.parse().ok()?;
                (info["status"] == "Trusted").then(|| {
                    let address = info["node_to_node_address"].as_str().unwrap_or_default();
                    (id, address.to_owned())
                })
            })
            .collect()
    }
}

/// Most nodes a service configuration holds.
const TRUSTED_NODES_MAX: usize = 1000;
