use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use coco_crypto::{Certificate, SigningKey, build_cose_receipt, sha256, sign_ccf_root};
use coco_merkle::{MerkleTree, ProofStep};
use coco_types::{Digest, TxId};

use super::*;
use crate::test_server::TestPki;

const ISSUED_AT: u64 = 1_700_000_000;
const SIGNATURE_SEQNO: u64 = 7;
const RECEIPT_SEQNO: u64 = 3;

fn commit_evidence(seqno: u64) -> String {
    format!("ce:2.{seqno}:{}", sha256(&seqno.to_be_bytes()).to_hex())
}

fn components(seqno: u64) -> JsonLeafComponents {
    JsonLeafComponents {
        write_set_digest: sha256(format!("entry {seqno}").as_bytes()),
        commit_evidence: commit_evidence(seqno),
        claims_digest: if seqno.is_multiple_of(2) { Digest::ZERO } else { sha256(b"claims") },
    }
}

/// A ledger of seqnos `1..SIGNATURE_SEQNO`, its tree, and the root the signature at
/// `SIGNATURE_SEQNO` signs.
fn tree() -> (MerkleTree, Digest) {
    let mut tree = MerkleTree::new();
    tree.append(Digest::ZERO);
    for seqno in 1..SIGNATURE_SEQNO {
        let c = components(seqno);
        tree.append(leaf_digest(&c.write_set_digest, &c.commit_evidence, &c.claims_digest));
    }
    let root = tree.root_at(SIGNATURE_SEQNO).unwrap();
    (tree, root)
}

fn json_receipt(pki: &TestPki) -> JsonReceipt {
    let (tree, root) = tree();
    JsonReceipt {
        cert: pki.node_cert.to_pem(),
        node_id: Some(pki.node_key.verifying_key().spki_sha256().to_hex()),
        is_signature_transaction: false,
        service_endorsements: vec![],
        leaf_components: Some(components(RECEIPT_SEQNO)),
        leaf: None,
        proof: tree.proof(RECEIPT_SEQNO, SIGNATURE_SEQNO).unwrap(),
        signature: STANDARD.encode(pki.node_key.sign_prehashed_sha256(&root)),
    }
}

fn flip(digest: &mut Digest) {
    digest.0[0] ^= 1;
}

#[test]
fn json_receipt_verifies() {
    let pki = TestPki::new();
    let receipt = json_receipt(&pki);
    let verified = verify_json_receipt(&receipt, &pki.service_cert.to_pem()).unwrap();
    assert_eq!(verified.form, ReceiptForm::Json);
    assert_eq!(verified.txid, Some(TxId::new(2, RECEIPT_SEQNO)));
    assert_eq!(verified.root, tree().1);
    assert_eq!(verified.claims_digest, Some(sha256(b"claims")));
    // The same receipt as bytes and as a JSON value, with whitespace first.
    let text = format!("\n  {}", serde_json::to_string_pretty(&receipt).unwrap());
    assert_eq!(
        verify_receipt_bytes(text.as_bytes(), &pki.service_cert.to_pem()).unwrap(),
        verified
    );
    let value = serde_json::to_value(&receipt).unwrap();
    assert_eq!(verify_json_receipt_value(&value, &pki.service_cert.to_pem()).unwrap(), verified);
}

#[test]
fn every_proof_step_is_covered_by_the_signature() {
    let pki = TestPki::new();
    let receipt = json_receipt(&pki);
    assert!(receipt.proof.len() >= 3, "the test needs a deep proof");
    for index in 0..receipt.proof.len() {
        let mut tampered = receipt.clone();
        match &mut tampered.proof.0[index] {
            ProofStep::Left(digest) | ProofStep::Right(digest) => flip(digest),
        }
        let result = verify_json_receipt(&tampered, &pki.service_cert.to_pem());
        assert!(
            matches!(result, Err(ReceiptError::BadSignature { .. })),
            "step {index}: {result:?}"
        );
        let mut swapped = receipt.clone();
        swapped.proof.0[index] = match receipt.proof.0[index] {
            ProofStep::Left(digest) => ProofStep::Right(digest),
            ProofStep::Right(digest) => ProofStep::Left(digest),
        };
        assert!(verify_json_receipt(&swapped, &pki.service_cert.to_pem()).is_err(), "side {index}");
    }
    let mut truncated = receipt;
    truncated.proof.0.pop();
    assert!(verify_json_receipt(&truncated, &pki.service_cert.to_pem()).is_err());
}

#[test]
fn leaf_components_and_signature_are_covered() {
    let pki = TestPki::new();
    let service = pki.service_cert.to_pem();
    let receipt = json_receipt(&pki);
    let mut tampers: Vec<(&str, JsonReceipt)> = Vec::new();
    let mut wsd = receipt.clone();
    flip(&mut wsd.leaf_components.as_mut().unwrap().write_set_digest);
    tampers.push(("write set digest", wsd));
    let mut claims = receipt.clone();
    flip(&mut claims.leaf_components.as_mut().unwrap().claims_digest);
    tampers.push(("claims digest", claims));
    let mut evidence = receipt.clone();
    evidence.leaf_components.as_mut().unwrap().commit_evidence = commit_evidence(RECEIPT_SEQNO + 1);
    tampers.push(("commit evidence", evidence));
    let mut signature = receipt.clone();
    let mut bytes = STANDARD.decode(&receipt.signature).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    signature.signature = STANDARD.encode(&bytes);
    tampers.push(("signature", signature));
    for (what, tampered) in tampers {
        let result = verify_json_receipt(&tampered, &service);
        assert!(matches!(result, Err(ReceiptError::BadSignature { .. })), "{what}: {result:?}");
    }
    let mut not_base64 = receipt.clone();
    not_base64.signature = "***".into();
    assert!(matches!(verify_json_receipt(&not_base64, &service), Err(ReceiptError::Malformed(_))));
    let mut bad_evidence = receipt;
    bad_evidence.leaf_components.as_mut().unwrap().commit_evidence = "ce:2.3".into();
    assert!(matches!(
        verify_json_receipt(&bad_evidence, &service),
        Err(ReceiptError::CommitEvidence(_))
    ));
}

#[test]
fn node_must_be_endorsed_by_the_given_service() {
    let pki = TestPki::new();
    let receipt = json_receipt(&pki);
    let other = TestPki::new();
    let result = verify_json_receipt(&receipt, &other.service_cert.to_pem());
    assert!(matches!(result, Err(ReceiptError::Endorsement { link: 0, .. })), "{result:?}");
    // A node that signs with its own key but is not endorsed: the signature verifies, the
    // chain does not.
    let rogue_cert =
        Certificate::self_signed_identity(&pki.node_key, "rogue", ISSUED_AT, 30).unwrap();
    let mut rogue = receipt.clone();
    rogue.cert = rogue_cert.to_pem();
    let result = verify_json_receipt(&rogue, &pki.service_cert.to_pem());
    assert!(matches!(result, Err(ReceiptError::Endorsement { link: 0, .. })), "{result:?}");
    // Another endorsed node's certificate: its key did not sign the root.
    let mut swapped = receipt;
    swapped.cert = other.node_cert.to_pem();
    let result = verify_json_receipt(&swapped, &other.service_cert.to_pem());
    assert!(matches!(result, Err(ReceiptError::BadSignature { .. })), "{result:?}");
    assert!(matches!(
        verify_json_receipt(&json_receipt(&pki), "garbage"),
        Err(ReceiptError::ServiceCertificate(_))
    ));
}

#[test]
fn endorsements_chain_to_a_new_service_identity() {
    let pki = TestPki::new();
    // After recovery the service has a new identity that endorses the old one's key.
    let new_service_key = SigningKey::generate_p384().unwrap();
    let new_service = Certificate::service_identity(&new_service_key, ISSUED_AT, 36_500).unwrap();
    let endorsement = Certificate::endorse_node(
        pki.service_key.verifying_key(),
        &new_service_key,
        &new_service,
        &[],
        ISSUED_AT,
        36_500,
    )
    .unwrap();
    let mut receipt = json_receipt(&pki);
    receipt.service_endorsements = vec![endorsement.to_pem()];
    let verified = verify_json_receipt(&receipt, &new_service.to_pem()).unwrap();
    assert_eq!(verified.txid, Some(TxId::new(2, RECEIPT_SEQNO)));
    let result = verify_json_receipt(&receipt, &pki.service_cert.to_pem());
    assert!(matches!(result, Err(ReceiptError::Endorsement { link: 1, .. })), "{result:?}");
    receipt.service_endorsements.clear();
    let result = verify_json_receipt(&receipt, &new_service.to_pem());
    assert!(matches!(result, Err(ReceiptError::Endorsement { link: 0, .. })), "{result:?}");
    receipt.service_endorsements = vec!["not a pem".into()];
    let result = verify_json_receipt(&receipt, &new_service.to_pem());
    assert!(matches!(result, Err(ReceiptError::Endorsement { link: 1, .. })), "{result:?}");
}

#[test]
fn signature_transaction_receipts_carry_the_leaf() {
    let pki = TestPki::new();
    let root = tree().1;
    let receipt = JsonReceipt {
        cert: pki.node_cert.to_pem(),
        node_id: None,
        is_signature_transaction: true,
        service_endorsements: vec![],
        leaf_components: None,
        leaf: Some(root),
        proof: Proof::default(),
        signature: STANDARD.encode(pki.node_key.sign_prehashed_sha256(&root)),
    };
    let verified = verify_json_receipt(&receipt, &pki.service_cert.to_pem()).unwrap();
    assert_eq!(verified.txid, None);
    assert_eq!(verified.root, root);
    let mut tampered = receipt.clone();
    flip(tampered.leaf.as_mut().unwrap());
    assert!(verify_json_receipt(&tampered, &pki.service_cert.to_pem()).is_err());
    let mut empty = receipt;
    empty.leaf = None;
    assert!(matches!(
        verify_json_receipt(&empty, &pki.service_cert.to_pem()),
        Err(ReceiptError::Malformed(_))
    ));
}

#[test]
fn oversized_receipts_are_refused() {
    let pki = TestPki::new();
    let mut receipt = json_receipt(&pki);
    receipt.proof.0 = vec![ProofStep::Left(Digest::ZERO); 65];
    assert!(matches!(
        verify_json_receipt(&receipt, &pki.service_cert.to_pem()),
        Err(ReceiptError::TooMany { what: "proof steps", count: 65, limit: 64 })
    ));
}

#[test]
fn every_truncation_of_a_json_receipt_fails_without_panicking() {
    let pki = TestPki::new();
    let service = pki.service_cert.to_pem();
    let bytes = serde_json::to_vec(&json_receipt(&pki)).unwrap();
    for end in 0..bytes.len() {
        assert!(verify_receipt_bytes(&bytes[..end], &service).is_err(), "prefix {end} verified");
    }
    assert_eq!(verify_receipt_bytes(b"", &service), Err(ReceiptError::UnknownForm));
    assert_eq!(verify_receipt_bytes(b"[1]", &service), Err(ReceiptError::UnknownForm));
}

fn cose_receipt(pki: &TestPki) -> Vec<u8> {
    let (tree, root) = tree();
    let signature = sign_ccf_root(
        &pki.service_key,
        &root,
        TxId::new(2, SIGNATURE_SEQNO),
        ISSUED_AT,
        "coco",
        "ledger",
    );
    let c = components(RECEIPT_SEQNO);
    let proof = tree.proof(RECEIPT_SEQNO, SIGNATURE_SEQNO).unwrap();
    build_cose_receipt(
        &signature,
        &c.write_set_digest,
        &c.commit_evidence,
        &c.claims_digest,
        &proof.to_cose_path(),
    )
    .unwrap()
}

#[test]
fn cose_receipt_verifies_and_detects_tampering() {
    let pki = TestPki::new();
    let service = pki.service_cert.to_pem();
    let bytes = cose_receipt(&pki);
    assert_eq!(bytes[0], 0xd2);
    let verified = verify_receipt_bytes(&bytes, &service).unwrap();
    assert_eq!(verified.form, ReceiptForm::Cose);
    assert_eq!(verified.txid, Some(TxId::new(2, RECEIPT_SEQNO)));
    assert_eq!(verified.signature_txid, Some(TxId::new(2, SIGNATURE_SEQNO)));
    assert_eq!(verified.root, tree().1);
    let other = TestPki::new();
    assert!(matches!(
        verify_receipt_bytes(&bytes, &other.service_cert.to_pem()),
        Err(ReceiptError::Cose(_))
    ));
    // Every single-byte flip past the tag either fails or (never) changes nothing signed.
    for index in 1..bytes.len() {
        let mut tampered = bytes.clone();
        tampered[index] ^= 0x01;
        assert!(verify_receipt_bytes(&tampered, &service).is_err(), "flip at {index} verified");
    }
    for end in 0..bytes.len() {
        assert!(verify_receipt_bytes(&bytes[..end], &service).is_err(), "prefix {end} verified");
    }
}

#[test]
fn commit_evidence_names_the_transaction() {
    assert_eq!(parse_commit_evidence("ce:4.17:ab01").unwrap(), TxId::new(4, 17));
    for bad in
        ["", "ce:", "ce:4.17", "ce:4.17:", "ce:4.17:zz", "xx:4.17:ab", "ce:4:ab", "ce:a.b:ab"]
    {
        assert!(parse_commit_evidence(bad).is_err(), "{bad:?} parsed");
    }
}
