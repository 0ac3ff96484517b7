//! The genesis transaction: creates the service's tables under CCF's names.

use std::path::Path;

use coco_crypto::Certificate;
use coco_kv::CommitOutcome;
use coco_types::{Digest, Seqno};
use serde_json::json;

use super::Node;
use super::signature::map;
use crate::config::NodeConfig;
use crate::error::{Error, Result};
use crate::tables;

/// Creates the service: leaf 0, the genesis transaction (seqno 1), and a first signature
/// (seqno 2) made durable, so the service is committed before it serves anyone.
pub(super) fn genesis(
    mut node: Node,
    config: &NodeConfig,
    now_ms: u64,
    app: &dyn crate::App,
) -> Result<Node> {
    assert_eq!(node.last_seqno(), Seqno(0), "genesis on a non-empty store");
    node.tree.append(Digest::ZERO);
    let members = read_certs(&config.service.members)?;
    let users = read_certs(&config.service.users)?;
    let node_id = node.identity.node_id.to_hex();
    let mut tx = node.kv.begin();
    let service_info = json!({
        "cert": node.service_cert_pem,
        "status": "Opening",
        "recovery_count": 0,
    });
    tx.put(&map(tables::SERVICE_INFO), tables::SINGLETON_KEY, to_bytes(&service_info));
    let node_info = json!({
        "status": "Trusted",
        "quote_info": {"format": "Insecure_Virtual"},
        "retired_committed": false,
        "node_to_node_address": config.network.listen_address.to_string(),
    });
    tx.put(&map(tables::NODES_INFO), node_id.as_bytes().to_vec(), to_bytes(&node_info));
    tx.put(
        &map(tables::NODES_ENDORSED_CERTIFICATES),
        node_id.as_bytes().to_vec(),
        node.node_cert_pem.as_bytes().to_vec(),
    );
    let encryption_keys = read_pems(&config.service.member_encryption_keys)?;
    for (index, cert) in members.iter().enumerate() {
        let id = cert.sha256_der().to_hex();
        tx.put(&map(tables::MEMBERS_CERTS), id.as_bytes(), cert.to_pem().into_bytes());
        let key = encryption_keys.get(index);
        let role = if key.is_some() { "Participant" } else { "NonParticipant" };
        let info = json!({"status": "Accepted", "member_data": null, "recovery_role": role});
        tx.put(&map(tables::MEMBERS_INFO), id.as_bytes(), to_bytes(&info));
        if let Some(key) = key {
            let keys = map(coco_gov::tables::MEMBERS_ENCRYPTION_PUBLIC_KEYS);
            tx.put(&keys, id.as_bytes(), key.as_bytes().to_vec());
        }
    }
    let service_config = json!({"recovery_threshold": config.service.recovery_threshold});
    tx.put(
        &map(coco_gov::tables::SERVICE_CONFIG),
        tables::SINGLETON_KEY,
        to_bytes(&service_config),
    );
    for cert in &users {
        let id = cert.sha256_der().to_hex();
        tx.put(&map(tables::USERS_CERTS), id.as_bytes(), cert.to_pem().into_bytes());
        tx.put(&map(tables::USERS_INFO), id.as_bytes(), to_bytes(&json!({"user_data": null})));
    }
    coco_gov::install_genesis(&mut tx);
    app.genesis(&mut tx, now_ms).map_err(|e| Error::Corrupt {
        what: "[apps] configuration".to_owned(),
        reason: e.message,
    })?;
    let secret = node.identity.ledger_secrets.current().key.clone();
    crate::recovery::issue_recovery_shares(&mut tx, &secret, Seqno(1))?;
    let CommitOutcome::Written { seqno, write_set } = node.kv.commit(tx)? else {
        unreachable!("genesis always writes");
    };
    node.seal_or_undo(seqno, &write_set, false, false, Digest::ZERO)?;
    node.emit_signature(now_ms)?;
    node.flush()?;
    node.bootstrap_consensus(&config.network.listen_address.to_string())?;
    let node_id = node.identity.node_id;
    tracing::info!(%node_id, committed = %node.committed, "service created");
    node.check_invariants();
    Ok(node)
}

fn read_certs(paths: &[impl AsRef<Path>]) -> Result<Vec<Certificate>> {
    read_pem_files(paths, Certificate::from_pem)
}

/// Reads RSA public key PEM files, checking each parses, and keeps their text.
fn read_pems(paths: &[impl AsRef<Path>]) -> Result<Vec<String>> {
    read_pem_files(paths, |pem| coco_crypto::RsaPublicKey::from_pem(pem).map(|_| pem.to_owned()))
}

/// Reads each PEM file and parses it with `parse`; errors name the file.
fn read_pem_files<T>(
    paths: &[impl AsRef<Path>],
    parse: impl Fn(&str) -> coco_crypto::Result<T>,
) -> Result<Vec<T>> {
    paths
        .iter()
        .map(|path| {
            let path = path.as_ref();
            let pem = std::fs::read_to_string(path)
                .map_err(|source| Error::Io { path: path.to_owned(), source })?;
            parse(&pem).map_err(|source| Error::Crypto { what: path.display().to_string(), source })
        })
        .collect()
}

fn to_bytes(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON values serialise")
}
