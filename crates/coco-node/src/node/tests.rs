//! Node state-machine tests: genesis, commit, signatures, receipts, restart, limits.

use std::path::Path;

use coco_crypto::{Certificate, SigningKey};
use coco_kv::MapName;
use coco_types::{Digest, Limits, Seqno, TxId, TxStatus, View};

use super::{Commit, Node};
use crate::config::{NetworkConfig, NodeConfig, ServiceConfig, StorageConfig};
use crate::error::Error;

pub(crate) const NOW_MS: u64 = 1_790_000_000_000;

pub(crate) fn config(dir: &Path) -> NodeConfig {
    let member = SigningKey::generate_p384().unwrap();
    let cert = Certificate::self_signed_identity(&member, "member0", NOW_MS / 1000, 30).unwrap();
    let member_path = dir.join("member0_cert.pem");
    if !member_path.exists() {
        std::fs::write(&member_path, cert.to_pem()).unwrap();
    }
    NodeConfig {
        network: NetworkConfig::loopback(0),
        storage: StorageConfig::under(dir, dir.join("service_cert.pem")),
        service: ServiceConfig {
            members: vec![member_path],
            users: vec![],
            member_encryption_keys: vec![],
            recovery_threshold: 1,
        },
        limits: Limits { sig_tx_interval: 10, ledger_chunk_bytes: 4096, ..Limits::default() },
        apps: std::collections::BTreeMap::new(),
    }
}

fn records() -> MapName {
    MapName::new("records").unwrap()
}

fn write(node: &mut Node, key: u64, value: &str) -> TxId {
    let mut tx = node.begin().unwrap();
    tx.put(&records(), key.to_be_bytes(), value.as_bytes());
    match node.commit(tx).unwrap() {
        Commit::Ordered(txid) => txid,
        Commit::ReadOnly => panic!("a write must be ordered"),
    }
}

#[test]
fn genesis_commits_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(&config(dir.path()), NOW_MS).unwrap();
    assert_eq!(node.committed(), TxId::new(2, 2), "genesis at 2.1, first signature at 2.2");
    assert_eq!(node.tx_status(TxId::new(2, 1)), TxStatus::Committed);
    assert_eq!(node.tx_status(TxId::new(2, 3)), TxStatus::Unknown);
    node.check_invariants();
}

#[test]
fn writes_commit_at_a_durable_signature_and_get_receipts() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(&config(dir.path()), NOW_MS).unwrap();
    let tx = write(&mut node, 1, "one");
    assert_eq!(node.tx_status(tx), TxStatus::Pending);
    assert!(matches!(node.receipt(tx), Err(Error::NoReceipt { reason: "pending", .. })));
    let signature = node.emit_signature(NOW_MS).unwrap();
    assert_eq!(node.tx_status(tx), TxStatus::Pending, "not durable yet");
    node.flush().unwrap();
    assert_eq!(node.committed(), signature);
    assert_eq!(node.tx_status(tx), TxStatus::Committed);
    let receipt = node.receipt(tx).unwrap();
    let components = receipt.leaf_components.as_ref().unwrap();
    let leaf = coco_merkle::leaf_digest(
        &components.write_set_digest,
        &components.commit_evidence,
        &components.claims_digest,
    );
    let root = receipt.proof.compute_root(leaf);
    let signature_der = base64_decode(&receipt.signature);
    let key = node.node_cert().verifying_key().unwrap();
    key.verify_prehashed_sha256(&root, &signature_der).unwrap();
    assert!(components.commit_evidence.starts_with(&format!("ce:{tx}:")));
    let cose = node.cose_receipt(tx).unwrap();
    let service = Certificate::from_pem(node.service_cert_pem()).unwrap();
    let info = coco_crypto::verify_cose_receipt(&cose, &service.verifying_key().unwrap()).unwrap();
    assert_eq!(info.root, root);
    node.check_invariants();
}

#[test]
fn only_a_signature_not_yet_durable_asks_for_a_sync() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(&config(dir.path()), NOW_MS).unwrap();
    assert!(!node.signature_awaits_sync(), "genesis is durable");
    write(&mut node, 1, "one");
    assert!(!node.signature_awaits_sync(), "a sync now could not move the commit point");
    let signature = node.emit_signature(NOW_MS).unwrap();
    assert!(node.signature_awaits_sync());
    write(&mut node, 2, "two");
    assert!(node.signature_awaits_sync(), "still waiting for the signature's sync");
    node.flush().unwrap();
    assert!(!node.signature_awaits_sync());
    assert_eq!(node.committed(), signature);
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).unwrap()
}

#[test]
fn signature_due_by_count_and_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(&config(dir.path()), NOW_MS).unwrap();
    assert!(!node.signature_due(NOW_MS + 1_000_000), "nothing unsigned, nothing to sign");
    write(&mut node, 1, "x");
    assert!(!node.signature_due(NOW_MS));
    assert!(node.signature_due(NOW_MS + node.limits.sig_ms_interval));
    for key in 2..=10 {
        write(&mut node, key, "x");
    }
    assert!(node.signature_due(NOW_MS), "sig_tx_interval reached");
}

/// A restart replays every entry: what was committed stays committed (the commit point
/// is recorded), and an unsigned suffix stays pending — consensus decides whether a
/// primary keeps it (a signature then commits it) or truncates it.
#[test]
fn restart_keeps_committed_and_leaves_the_unsigned_suffix_pending() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let (committed_tx, pending_tx, service_cert) = {
        let mut node = Node::open(&config, NOW_MS).unwrap();
        let committed_tx = write(&mut node, 1, "kept");
        node.emit_signature(NOW_MS).unwrap();
        let pending_tx = write(&mut node, 2, "unsigned");
        node.flush().unwrap();
        (committed_tx, pending_tx, node.service_cert_pem().to_owned())
    };
    let mut node = Node::open(&config, NOW_MS).unwrap();
    assert_eq!(node.service_cert_pem(), service_cert);
    assert_eq!(node.tx_status(committed_tx), TxStatus::Committed);
    assert_eq!(node.tx_status(pending_tx), TxStatus::Pending);
    let mut tx = node.begin_read();
    assert_eq!(tx.get(&records(), &1u64.to_be_bytes()), Some(&b"kept"[..]));
    assert_eq!(tx.get(&records(), &2u64.to_be_bytes()), Some(&b"unsigned"[..]));
    node.emit_signature(NOW_MS).unwrap();
    node.flush().unwrap();
    assert_eq!(node.tx_status(pending_tx), TxStatus::Committed);
    node.check_invariants();
}

#[test]
fn oversized_write_set_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.limits.write_set_bytes_max = 2048;
    config.limits.sig_tx_interval = 100;
    let mut node = Node::open(&config, NOW_MS).unwrap();
    let before = node.last_seqno();
    let mut tx = node.begin().unwrap();
    tx.put(&records(), 1u64.to_be_bytes(), vec![b'x'; 4096]);
    assert!(matches!(node.commit(tx), Err(Error::WriteSetTooLarge { .. })));
    assert_eq!(node.last_seqno(), before);
    assert_eq!(write(&mut node, 2, "small").seqno, before.next());
    node.check_invariants();
}

#[test]
fn backpressure_at_pending_txs_max() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.limits.pending_txs_max = 3;
    config.limits.sig_tx_interval = 100;
    let mut node = Node::open(&config, NOW_MS).unwrap();
    for key in 0..3 {
        write(&mut node, key, "x");
    }
    assert!(matches!(node.begin(), Err(Error::Backpressure { pending: 3, limit: 3 })));
    node.emit_signature(NOW_MS).unwrap();
    node.flush().unwrap();
    assert!(node.begin().is_ok());
}

#[test]
fn audit_accepts_the_ledger_and_rejects_a_flipped_byte() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let mut node = Node::open(&config, NOW_MS).unwrap();
    for key in 0..100 {
        write(&mut node, key, "some value");
        if node.signature_due(NOW_MS) {
            node.emit_signature(NOW_MS).unwrap();
        }
    }
    node.emit_signature(NOW_MS).unwrap();
    node.flush().unwrap();
    drop(node);
    let report = crate::verify_ledger(&config.storage.ledger_dir, &mut |_, _| {}).unwrap();
    assert_eq!(report.transactions, 2 + 100 + 11);
    assert!(report.chunks > 1, "small chunks rotate");
    let committed = std::fs::read_dir(&config.storage.ledger_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.to_string_lossy().ends_with(".committed"))
        .unwrap();
    let mut bytes = std::fs::read(&committed).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&committed, bytes).unwrap();
    let error = crate::verify_ledger(&config.storage.ledger_dir, &mut |_, _| {}).unwrap_err();
    let dir = config.storage.ledger_dir.display().to_string();
    assert!(error.to_string().contains(&dir), "the error names a chunk file: {error}");
}

#[test]
fn view_of_follows_the_view_history() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(&config(dir.path()), NOW_MS).unwrap();
    assert_eq!(node.view_of(Seqno(0)), None);
    assert_eq!(node.view_of(Seqno(1)), Some(View(2)));
    assert_eq!(node.view_of(Seqno(3)), None);
    assert_eq!(node.merkle_root(), node.tree.root().unwrap());
    assert_ne!(node.merkle_root(), Digest::ZERO);
}

#[test]
fn a_damaged_ledger_is_refused_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let mut node = Node::open(&config, NOW_MS).unwrap();
    let tx = write(&mut node, 1, "a private value long enough to hit");
    node.emit_signature(NOW_MS).unwrap();
    node.flush().unwrap();
    drop(node);
    let chunk = std::fs::read_dir(&config.storage.ledger_dir).unwrap().next().unwrap().unwrap();
    let mut bytes = std::fs::read(chunk.path()).unwrap();
    // The private ciphertext of the write sits just before the final signature entry;
    // flipping the last byte of the record's entry breaks its GCM tag check.
    let needle = tx.seqno.0.to_le_bytes();
    let iv_at = bytes.windows(12).rposition(|w| w[..8] == needle && w[8] == 2).unwrap();
    let size = u64::from_le_bytes(
        bytes[iv_at - 22..iv_at - 16]
            .try_into()
            .map(|six: [u8; 6]| {
                let mut eight = [0u8; 8];
                eight[..6].copy_from_slice(&six);
                eight
            })
            .unwrap(),
    );
    let entry_end = iv_at - 24 + 8 + usize::try_from(size).unwrap();
    bytes[entry_end - 1] ^= 0x01;
    std::fs::write(chunk.path(), bytes).unwrap();
    let error = Node::open(&config, NOW_MS).map(|_| ()).unwrap_err().to_string();
    assert!(error.contains("offset"), "{error}");
    assert!(error.contains(&chunk.path().display().to_string()), "{error}");
}

#[test]
fn genesis_issues_recovery_shares_that_rebuild_the_ledger_secret_m_of_n() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    let mut rsa_keys = Vec::new();
    for index in 0..3 {
        let key = coco_crypto::RsaPrivateKey::generate(2048).unwrap();
        let path = dir.path().join(format!("member{index}_enc_pubk.pem"));
        std::fs::write(&path, key.public_key_pem()).unwrap();
        config.service.member_encryption_keys.push(path);
        rsa_keys.push(key);
        if index > 0 {
            let member = SigningKey::generate_p384().unwrap();
            let cert = Certificate::self_signed_identity(&member, "m", NOW_MS / 1000, 30).unwrap();
            let cert_path = dir.path().join(format!("member{index}_cert.pem"));
            std::fs::write(&cert_path, cert.to_pem()).unwrap();
            config.service.members.push(cert_path);
        }
    }
    config.service.recovery_threshold = 2;
    let node = Node::open(&config, NOW_MS).unwrap();
    let mut tx = node.begin_read();
    let members: Vec<String> = config
        .service
        .members
        .iter()
        .map(|path| {
            let cert = Certificate::from_pem(&std::fs::read_to_string(path).unwrap()).unwrap();
            cert.sha256_der().to_hex()
        })
        .collect();
    let shares: Vec<coco_crypto::Share> = members
        .iter()
        .zip(&rsa_keys)
        .map(|(id, key)| {
            let record = tx.get(&MapName::new(crate::RECOVERY_SHARES).unwrap(), id.as_bytes());
            let record: serde_json::Value = serde_json::from_slice(record.unwrap()).unwrap();
            let encrypted = base64::engine::general_purpose::STANDARD
                .decode(record["encrypted_share"].as_str().unwrap())
                .unwrap();
            coco_crypto::Share::from_bytes(&key.decrypt_oaep_sha256(&encrypted).unwrap()).unwrap()
        })
        .collect();
    let wrapped = tx.get(&MapName::new(crate::WRAPPED_LEDGER_SECRET).unwrap(), &[0; 8]).unwrap();
    let wrapped: serde_json::Value = serde_json::from_slice(wrapped).unwrap();
    let wrapped = base64::engine::general_purpose::STANDARD
        .decode(wrapped["wrapped_secret"].as_str().unwrap())
        .unwrap();
    let secret = node.identity.ledger_secrets.current().key.raw();
    for pair in [[0, 1], [1, 2], [0, 2]] {
        let chosen = [shares[pair[0]].clone(), shares[pair[1]].clone()];
        let wrapping = coco_crypto::combine_shares(&chosen).unwrap();
        let wrapping = coco_crypto::Aes256GcmKey::new(&wrapping).unwrap();
        let recovered = coco_crypto::unwrap_key(&wrapping, &wrapped, crate::RECOVERY_AAD).unwrap();
        assert_eq!(&recovered, secret, "shares {pair:?} rebuild the ledger secret");
    }
    assert!(coco_crypto::combine_shares(&shares[..1]).is_err(), "one share is not enough");
}

/// Writes `count` transactions and signs them, `per_signature` at a time.
fn write_and_sign(node: &mut Node, count: u64, per_signature: u64) {
    for key in 0..count {
        write(node, key, "snapshotted");
        if (key + 1) % per_signature == 0 {
            node.emit_signature(NOW_MS).unwrap();
        }
    }
}

/// A node snapshotting every 20 seqnos that has written 24 transactions, signed 6 at a
/// time: signatures at 2, 9, 16 and 23, a snapshot at 23 waiting for its evidence.
fn snapshotting_node(dir: &Path) -> (NodeConfig, Node) {
    let mut config = config(dir);
    config.limits.snapshot_tx_interval = 20;
    let mut node = Node::open(&config, NOW_MS).unwrap();
    write_and_sign(&mut node, 24, 6);
    (config, node)
}

#[test]
fn snapshots_commit_with_the_receipt_of_their_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut node) = snapshotting_node(dir.path());
    // Signatures at 2, 9, 16, 23: 23 is the first at or after 20.
    let snapshot = Seqno(23);
    assert_eq!(node.snapshot_without_evidence(), Some(snapshot));
    assert!(node.snapshots.committed().unwrap().is_empty(), "no evidence yet");
    node.emit_snapshot_evidence(snapshot).unwrap();
    let evidence = node.last_seqno();
    node.emit_signature(NOW_MS).unwrap();
    node.flush().unwrap();
    let committed = node.snapshots.committed().unwrap();
    assert_eq!((committed[0].seqno, committed[0].evidence), (snapshot, evidence));
    let file = std::fs::read(&committed[0].path).unwrap();
    let (bytes, receipt) = coco_ledger::split_committed_snapshot(&file).unwrap();
    let service_key = node.identity.service_cert.verifying_key().unwrap();
    let info = coco_crypto::verify_cose_receipt(receipt, &service_key).unwrap();
    assert_eq!(info.leaf_components.claims_digest, coco_crypto::sha256(bytes));
    let decoded = coco_ledger::decode_snapshot(bytes).unwrap();
    assert_eq!((decoded.seqno, decoded.view), (snapshot, View(2)));
    assert_eq!(decoded.hash_at_snapshot, node.tree.leaf(23).unwrap().as_bytes());
    let secret = node.identity.ledger_secrets.for_seqno(snapshot).unwrap();
    let private = decoded.decrypt_private(&secret.key).unwrap();
    let restored = coco_kv::Store::restore_snapshot(snapshot, decoded.public_maps, &private);
    let restored = restored.unwrap().snapshot();
    // Keys 12..=17 are at seqnos 17..=22, key 18 after the snapshot's signature.
    assert_eq!(restored.get(&records(), &17_u64.to_be_bytes()), Some(&b"snapshotted"[..]));
    assert_eq!(restored.get(&records(), &18_u64.to_be_bytes()), None, "after the snapshot");
}

/// The committed chunk files of `config`'s ledger that end at or before `seqno`.
fn chunks_up_to(config: &NodeConfig, seqno: Seqno) -> Vec<std::path::PathBuf> {
    let ledger = coco_ledger::Ledger::open(&config.storage.ledger_dir, 4096).unwrap();
    let chunks = ledger.chunks().into_iter().filter(|chunk| chunk.end <= seqno);
    chunks.map(|chunk| config.storage.ledger_dir.join(chunk.file_name)).collect()
}

#[test]
fn a_node_starts_from_its_snapshot_once_older_chunks_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let (config, mut node) = snapshotting_node(dir.path());
    let snapshot = Seqno(23);
    node.emit_snapshot_evidence(snapshot).unwrap();
    let after = write(&mut node, 100, "after the snapshot");
    node.emit_signature(NOW_MS).unwrap();
    node.flush().unwrap();
    let before = TxId::new(2, 10);
    assert!(node.receipt(before).is_ok(), "the whole ledger proves old transactions");
    drop(node);
    let old = chunks_up_to(&config, snapshot);
    assert!(!old.is_empty(), "the snapshot's signature ends a chunk");
    for chunk in old {
        std::fs::remove_file(chunk).unwrap();
    }
    let mut node = Node::open(&config, NOW_MS).unwrap();
    node.check_invariants();
    assert_eq!(node.starts_after, Some(TxId::new(2, 23)));
    let read = |node: &Node, key: u64| {
        node.begin_read().get(&records(), &key.to_be_bytes()).map(<[u8]>::to_vec)
    };
    assert_eq!(read(&node, 5).as_deref(), Some(&b"snapshotted"[..]));
    assert_eq!(read(&node, 100).as_deref(), Some(&b"after the snapshot"[..]));
    assert_eq!(node.tx_status(after), TxStatus::Committed);
    assert!(node.receipt(after).is_ok(), "transactions after the snapshot keep receipts");
    assert!(matches!(node.receipt(before), Err(Error::NoReceipt { .. })));
    let next = write(&mut node, 101, "after the restart");
    node.emit_signature(NOW_MS).unwrap();
    node.flush().unwrap();
    assert_eq!(node.tx_status(next), TxStatus::Committed);
}

#[test]
fn a_ledger_missing_chunks_without_a_snapshot_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let mut node = Node::open(&config, NOW_MS).unwrap();
    write_and_sign(&mut node, 60, 6);
    node.flush().unwrap();
    drop(node);
    let first = chunks_up_to(&config, Seqno(u64::MAX)).into_iter().next().unwrap();
    std::fs::remove_file(first).unwrap();
    let error = Node::open(&config, NOW_MS).err().unwrap().to_string();
    assert!(error.contains("no committed snapshot"), "{error}");
    let audit = crate::verify_ledger(&config.storage.ledger_dir, &mut |_, _| {}).unwrap_err();
    assert!(audit.to_string().contains("not 1: an audit needs every chunk"), "{audit}");
}

#[test]
fn a_snapshot_from_another_node_is_checked_before_anything_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (config, mut node) = snapshotting_node(dir.path());
    node.emit_snapshot_evidence(Seqno(23)).unwrap();
    node.emit_signature(NOW_MS).unwrap();
    node.flush().unwrap();
    let file = std::fs::read(&node.snapshots.committed().unwrap()[0].path).unwrap();
    // Another node of another service: a snapshot of this one is not its to install.
    let other_dir = tempfile::tempdir().unwrap();
    let mut other = Node::open(&config_like(&config, other_dir.path()), NOW_MS).unwrap();
    let before = (other.last_seqno(), other.committed());
    let at = TxId::new(2, 23);
    assert!(other.install_snapshot(at, &file).is_err(), "another service's snapshot");
    let mut altered = file.clone();
    altered[300] ^= 1;
    assert!(node.install_snapshot(TxId::new(2, 40), &altered).is_err(), "an altered one");
    assert!(node.install_snapshot(TxId::new(2, 40), &file[..file.len() - 1]).is_err());
    assert_eq!((other.last_seqno(), other.committed()), before);
    other.check_invariants();
    node.check_invariants();
}

/// `config` with its directories under `dir`.
fn config_like(config: &NodeConfig, dir: &Path) -> NodeConfig {
    let mut other = self::config(dir);
    other.limits = config.limits.clone();
    other
}
