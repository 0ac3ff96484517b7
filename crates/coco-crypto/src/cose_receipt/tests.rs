use coco_types::TxId;

use super::*;
use crate::cose::{encode, sign_ccf_root};
use crate::test_python::{ccf_python, run_python};
use crate::{Certificate, Error, SigningKey};

const NOW: u64 = 1_750_000_000;

fn hash_pair(left: &Digest, right: &Digest) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update(left.as_bytes());
    hasher.update(right.as_bytes());
    hasher.finish()
}

struct Fixture {
    key: SigningKey,
    components: LeafComponents,
    receipt: Vec<u8>,
    root: Digest,
}

/// A two-leaf tree [zeros, leaf(components)]: the receipt for leaf 1 has one left step.
fn two_leaf_fixture(key: SigningKey) -> Fixture {
    let components = LeafComponents {
        write_set_digest: sha256(b"entry bytes"),
        commit_evidence: "ce:2.1:0123456789abcdef".to_owned(),
        claims_digest: sha256(b"claims"),
    };
    let root = hash_pair(&Digest::ZERO, &components.leaf());
    let signature = sign_ccf_root(&key, &root, TxId::new(2, 2), NOW, "service", "ledger");
    let receipt = build_cose_receipt(
        &signature,
        &components.write_set_digest,
        &components.commit_evidence,
        &components.claims_digest,
        &[(true, Digest::ZERO)],
    )
    .unwrap();
    Fixture { key, components, receipt, root }
}

#[test]
fn two_leaf_receipt_verifies() {
    let Fixture { key, components, receipt, root } =
        two_leaf_fixture(SigningKey::generate_p384().unwrap());
    let info = verify_cose_receipt(&receipt, key.verifying_key()).unwrap();
    assert_eq!(info.root, root);
    assert_eq!(info.leaf, components.leaf());
    assert_eq!(info.leaf_components, components);
    assert_eq!(info.signature.txid, TxId::new(2, 2));
    assert_eq!(info.signature.iat, NOW);
}

#[test]
fn three_leaf_receipt_with_right_and_left_steps() {
    let key = SigningKey::generate_p256().unwrap();
    let components = LeafComponents {
        write_set_digest: sha256(b"w"),
        commit_evidence: "ce:1.1:00".to_owned(),
        claims_digest: Digest::ZERO,
    };
    // Leaves [zeros, leaf, c]; merklecpp promotes c: root = H(H(zeros, leaf), c).
    let third = sha256(b"third");
    let root = hash_pair(&hash_pair(&Digest::ZERO, &components.leaf()), &third);
    let signature = sign_ccf_root(&key, &root, TxId::new(1, 3), NOW, "s", "l");
    let path = [(true, Digest::ZERO), (false, third)];
    let receipt = build_cose_receipt(
        &signature,
        &components.write_set_digest,
        &components.commit_evidence,
        &components.claims_digest,
        &path,
    )
    .unwrap();
    assert_eq!(verify_cose_receipt(&receipt, key.verifying_key()).unwrap().root, root);
    // The same receipt with the steps' sides swapped proves another root.
    let swapped = [(false, Digest::ZERO), (true, third)];
    let wrong = build_cose_receipt(
        &signature,
        &components.write_set_digest,
        "ce:1.1:00",
        &Digest::ZERO,
        &swapped,
    )
    .unwrap();
    assert_eq!(verify_cose_receipt(&wrong, key.verifying_key()), Err(Error::BadSignature));
}

#[test]
fn receipts_reject_bad_input() {
    let Fixture { key, components, receipt, root } =
        two_leaf_fixture(SigningKey::generate_p384().unwrap());
    let verifying = key.verifying_key();
    let stranger = SigningKey::generate_p384().unwrap();
    assert!(matches!(
        verify_cose_receipt(&receipt, stranger.verifying_key()),
        Err(Error::KidMismatch { .. })
    ));
    // A bare signature (no vdp) is not a receipt.
    let signature = sign_ccf_root(&key, &root, TxId::new(2, 2), NOW, "service", "ledger");
    assert!(matches!(verify_cose_receipt(&signature, verifying), Err(Error::Malformed { .. })));
    // Untagged.
    let value: Value = ciborium::from_reader(receipt.as_slice()).unwrap();
    let Value::Tag(_, inner) = value else { panic!("tagged") };
    assert!(matches!(
        verify_cose_receipt(&encode(&inner), verifying),
        Err(Error::Malformed { .. })
    ));
    // Another leaf under the same signature.
    let forged = build_cose_receipt(
        &signature,
        &components.write_set_digest,
        "ce:2.1:forged",
        &components.claims_digest,
        &[(true, Digest::ZERO)],
    )
    .unwrap();
    assert_eq!(verify_cose_receipt(&forged, verifying), Err(Error::BadSignature));
    // Too long a path is refused on both sides.
    let long = vec![(true, Digest::ZERO); RECEIPT_PATH_STEPS_MAX + 1];
    assert!(build_cose_receipt(&signature, &Digest::ZERO, "", &Digest::ZERO, &long).is_err());
    // Every flip and truncation fails.
    for index in 0..receipt.len() {
        let mut corrupt = receipt.clone();
        corrupt[index] ^= 0x01;
        assert!(verify_cose_receipt(&corrupt, verifying).is_err(), "flip at {index}");
        assert!(verify_cose_receipt(&receipt[..index], verifying).is_err(), "cut at {index}");
    }
}

/// `ccf.receipt.verify_cose` accepts our receipt; `ccf.receipt.verify` accepts our node
/// signature over the root; `check_endorsements` and a pyca chain verifier accept our
/// node certificate under our service certificate.
#[test]
fn ccf_python_accepts_our_receipts_and_certificates() {
    let Some(python) = ccf_python() else { return };
    let service_key = SigningKey::generate_p384().unwrap();
    let service_cert = Certificate::service_identity(&service_key, NOW, 365).unwrap();
    let node_key = SigningKey::generate_p384().unwrap();
    let sans = ["localhost".to_owned(), "127.0.0.1".to_owned()];
    let node_cert = Certificate::endorse_node(
        node_key.verifying_key(),
        &service_key,
        &service_cert,
        &sans,
        NOW,
        30,
    )
    .unwrap();
    let Fixture { components, receipt, root, .. } = two_leaf_fixture(service_key);
    let node_signature = node_key.sign_prehashed_sha256(&root);

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("receipt.cose"), &receipt).unwrap();
    std::fs::write(dir.path().join("service.pem"), service_cert.to_pem()).unwrap();
    std::fs::write(dir.path().join("node.pem"), node_cert.to_pem()).unwrap();
    let script = format!(
        r#"
import base64, datetime
import ccf.receipt
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store
service = x509.load_pem_x509_certificate(open("service.pem", "rb").read())
node = x509.load_pem_x509_certificate(open("node.pem", "rb").read())
receipt = open("receipt.cose", "rb").read()
phdr = ccf.receipt.verify_cose(receipt, service.public_key(), bytes.fromhex("{claims}"))
assert phdr["ccf.v1"]["txid"] == "2.2", phdr
try:
    ccf.receipt.verify_cose(receipt, service.public_key(), bytes(32))
    raise SystemExit("wrong claims digest accepted")
except ValueError:
    pass
ccf.receipt.verify("{root}", "{signature}", node)
assert ccf.receipt.root("{leaf}", [{{"left": "00" * 32}}]) == "{root}"
ccf.receipt.check_endorsements(node, service, [])
when = datetime.datetime.fromtimestamp({now} + 60, datetime.timezone.utc)
store = Store([service])
PolicyBuilder().store(store).time(when).build_client_verifier().verify(node, [])
server = PolicyBuilder().store(store).time(when).build_server_verifier(x509.DNSName("localhost"))
server.verify(node, [])
print("ok")
"#,
        claims = components.claims_digest.to_hex(),
        root = root.to_hex(),
        leaf = components.leaf().to_hex(),
        signature =
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &node_signature),
        now = NOW,
    );
    assert_eq!(run_python(&python, &script, dir.path()).trim(), "ok");
}
