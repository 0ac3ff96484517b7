use super::*;
use crate::{Certificate, sha256};

const NOW: u64 = 1_750_000_000;

fn root() -> Digest {
    sha256(b"root")
}

#[test]
fn ccf_root_signature_round_trip() {
    for key in [SigningKey::generate_p384().unwrap(), SigningKey::generate_p256().unwrap()] {
        let txid = TxId::new(2, 42);
        let cose = sign_ccf_root(&key, &root(), txid, NOW, "service.example", "ledger.signature");
        let headers = verify_ccf_root(&cose, key.verifying_key(), &root()).unwrap();
        assert_eq!(headers.txid, txid);
        assert_eq!(headers.iat, NOW);
        assert_eq!(headers.kid, key.verifying_key().spki_sha256().to_hex());
        assert_eq!(headers.issuer.as_deref(), Some("service.example"));
        assert_eq!(headers.subject.as_deref(), Some("ledger.signature"));
        let other_root = sha256(b"other");
        assert_eq!(
            verify_ccf_root(&cose, key.verifying_key(), &other_root),
            Err(Error::BadSignature)
        );
    }
}

#[test]
fn ccf_root_signature_bytes_have_ccf_shape() {
    let key = SigningKey::generate_p384().unwrap();
    let cose = sign_ccf_root(&key, &root(), TxId::new(1, 7), NOW, "iss", "sub");
    // Tag 18, array(4), protected bstr.
    assert_eq!(&cose[..2], &[0xd2, 0x84]);
    let sign1 = parse_sign1(&cose).unwrap();
    assert!(sign1.payload.is_none());
    assert!(sign1.unprotected.is_empty());
    assert_eq!(sign1.signature.len(), 96);
    let protected = protected_bytes(&sign1);
    let kid = key.verifying_key().spki_sha256().to_hex();
    let mut expected = vec![0xa5, 0x01, 0x38, 0x22, 0x04, 0x58, 0x40];
    expected.extend_from_slice(kid.as_bytes());
    expected.extend_from_slice(&[0x0f, 0xa3, 0x01, 0x63]);
    expected.extend_from_slice(b"iss");
    expected.extend_from_slice(&[0x02, 0x63]);
    expected.extend_from_slice(b"sub");
    expected.extend_from_slice(&[0x06, 0x1a]);
    expected.extend_from_slice(&u32::try_from(NOW).unwrap().to_be_bytes());
    expected.extend_from_slice(&[0x19, 0x01, 0x8b, 0x02, 0x66]);
    expected.extend_from_slice(b"ccf.v1");
    expected.extend_from_slice(&[0xa1, 0x64]);
    expected.extend_from_slice(b"txid");
    expected.extend_from_slice(&[0x63]);
    expected.extend_from_slice(b"1.7");
    assert_eq!(hex::encode(protected), hex::encode(expected));
}

#[test]
fn ccf_root_signature_rejects_bad_input() {
    let key = SigningKey::generate_p384().unwrap();
    let cose = sign_ccf_root(&key, &root(), TxId::new(1, 7), NOW, "iss", "sub");
    let verifying = key.verifying_key();
    // Wrong key on the same curve: kid mismatch.
    let stranger = SigningKey::generate_p384().unwrap();
    assert!(matches!(
        verify_ccf_root(&cose, stranger.verifying_key(), &root()),
        Err(Error::KidMismatch { .. })
    ));
    // Wrong curve: algorithm mismatch.
    let small = SigningKey::generate_p256().unwrap();
    assert!(matches!(
        verify_ccf_root(&cose, small.verifying_key(), &root()),
        Err(Error::AlgorithmMismatch { alg: -35 })
    ));
    // Untagged.
    let sign1 = parse_sign1(&cose).unwrap();
    let untagged = {
        let value: Value = ciborium::from_reader(cose.as_slice()).unwrap();
        let Value::Tag(_, inner) = value else { panic!("tagged") };
        encode(&inner)
    };
    assert!(matches!(verify_ccf_root(&untagged, verifying, &root()), Err(Error::Malformed { .. })));
    // Another tag.
    let mut retagged = cose.clone();
    retagged[0] = 0xd1;
    assert!(matches!(verify_ccf_root(&retagged, verifying, &root()), Err(Error::Malformed { .. })));
    // Flipped signature byte.
    let mut flipped = cose.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert_eq!(verify_ccf_root(&flipped, verifying, &root()), Err(Error::BadSignature));
    // Attached payload.
    let attached = encode_sign1(
        protected_bytes(&sign1).to_vec(),
        Value::Map(vec![]),
        Some(root().as_bytes().to_vec()),
        sign1.signature.clone(),
    );
    assert!(matches!(verify_ccf_root(&attached, verifying, &root()), Err(Error::Malformed { .. })));
    // Trailing bytes and garbage.
    let mut trailing = cose;
    trailing.push(0);
    assert!(verify_ccf_root(&trailing, verifying, &root()).is_err());
    assert!(verify_ccf_root(b"", verifying, &root()).is_err());
    assert!(verify_ccf_root(b"\xd2\x84", verifying, &root()).is_err());
}

/// Every single-byte flip and every truncation is an error, never a panic or a pass.
#[test]
fn ccf_root_signature_corruption_sweep() {
    let key = SigningKey::generate_p256().unwrap();
    let cose = sign_ccf_root(&key, &root(), TxId::new(1, 7), NOW, "iss", "sub");
    for index in 0..cose.len() {
        for mask in [0x01u8, 0x80] {
            let mut corrupt = cose.clone();
            corrupt[index] ^= mask;
            assert!(
                verify_ccf_root(&corrupt, key.verifying_key(), &root()).is_err(),
                "{index} {:x}",
                cose[index]
            );
        }
        assert!(verify_ccf_root(&cose[..index], key.verifying_key(), &root()).is_err());
    }
}

fn member() -> (SigningKey, Certificate) {
    let key = SigningKey::generate_p384().unwrap();
    let cert = Certificate::self_signed_identity(&key, "member0", NOW, 365).unwrap();
    (key, cert)
}

#[test]
fn gov_envelope_round_trip() {
    let (key, cert) = member();
    let kid = cert.sha256_der().to_hex();
    let payload = br#"{"actions":[]}"#;
    let bytes = sign_gov_envelope(&key, &kid, "proposal", NOW, None, payload);
    let envelope = parse_gov_envelope(&bytes).unwrap();
    assert_eq!(envelope.alg, CoseAlgorithm::Es384);
    assert_eq!(envelope.kid, kid);
    assert_eq!(envelope.msg_type, "proposal");
    assert_eq!(envelope.created_at, NOW);
    assert_eq!(envelope.proposal_id, None);
    assert_eq!(envelope.payload, payload);
    envelope.verify(&cert.verifying_key().unwrap()).unwrap();

    let ballot = sign_gov_envelope(&key, &kid, "ballot", NOW, Some("abcd"), b"{}");
    let ballot = parse_gov_envelope(&ballot).unwrap();
    assert_eq!(ballot.proposal_id.as_deref(), Some("abcd"));
    ballot.verify(key.verifying_key()).unwrap();
}

#[test]
fn gov_envelope_bytes_match_ccf_cose_sign1() {
    let (key, cert) = member();
    let kid = cert.sha256_der().to_hex();
    let payload = [0x61u8; 0x55];
    let bytes = sign_gov_envelope(&key, &kid, "proposal", NOW, None, &payload);
    // d2 84 58 7d a4 01 38 22 04 58 40 <kid> 70 "ccf.gov.msg.type" 68 "proposal"
    // 76 "ccf.gov.msg.created_at" 1a <u32> a0 58 55 <payload> 58 60 <sig>
    let mut expected = vec![0xd2, 0x84, 0x58, 0x7d, 0xa4, 0x01, 0x38, 0x22, 0x04, 0x58, 0x40];
    expected.extend_from_slice(kid.as_bytes());
    expected.push(0x70);
    expected.extend_from_slice(b"ccf.gov.msg.type");
    expected.push(0x68);
    expected.extend_from_slice(b"proposal");
    expected.push(0x76);
    expected.extend_from_slice(b"ccf.gov.msg.created_at");
    expected.push(0x1a);
    expected.extend_from_slice(&u32::try_from(NOW).unwrap().to_be_bytes());
    expected.extend_from_slice(&[0xa0, 0x58, 0x55]);
    expected.extend_from_slice(&payload);
    expected.extend_from_slice(&[0x58, 0x60]);
    assert_eq!(hex::encode(&bytes[..expected.len()]), hex::encode(&expected));
    assert_eq!(bytes.len(), expected.len() + 96);
}

#[test]
fn gov_envelope_rejects_bad_input() {
    let (key, cert) = member();
    let kid = cert.sha256_der().to_hex();
    let bytes = sign_gov_envelope(&key, &kid, "ack", NOW, None, b"{}");
    let envelope = parse_gov_envelope(&bytes).unwrap();
    let (stranger, _) = member();
    assert_eq!(envelope.verify(stranger.verifying_key()), Err(Error::BadSignature));
    let small = SigningKey::generate_p256().unwrap();
    assert_eq!(envelope.verify(small.verifying_key()), Err(Error::AlgorithmMismatch { alg: -35 }));
    let mut flipped = envelope.clone();
    flipped.signature[10] ^= 1;
    assert_eq!(flipped.verify(key.verifying_key()), Err(Error::BadSignature));
    let mut tampered = envelope.clone();
    tampered.payload = b"{ }".to_vec();
    assert_eq!(tampered.verify(key.verifying_key()), Err(Error::BadSignature));

    // Untagged, detached, or missing headers.
    assert!(parse_gov_envelope(&bytes[1..]).is_err());
    let detached = encode_sign1(envelope.protected_bytes, Value::Map(vec![]), None, vec![]);
    assert!(matches!(parse_gov_envelope(&detached), Err(Error::Malformed { .. })));
    let no_created_at = encode(&Value::Map(vec![
        (Value::from(1), Value::from(-35)),
        (Value::from(4), Value::Bytes(kid.as_bytes().to_vec())),
        (Value::from("ccf.gov.msg.type"), Value::from("ack")),
    ]));
    let message = encode_sign1(no_created_at, Value::Map(vec![]), Some(vec![]), vec![0; 96]);
    assert!(matches!(parse_gov_envelope(&message), Err(Error::Malformed { .. })));
    let es512 = encode(&Value::Map(vec![
        (Value::from(1), Value::from(-36)),
        (Value::from(4), Value::Bytes(kid.as_bytes().to_vec())),
        (Value::from("ccf.gov.msg.type"), Value::from("ack")),
        (Value::from("ccf.gov.msg.created_at"), Value::from(NOW)),
    ]));
    let message = encode_sign1(es512, Value::Map(vec![]), Some(vec![]), vec![0; 132]);
    assert_eq!(parse_gov_envelope(&message), Err(Error::UnsupportedAlgorithm(-36)));
    for index in 0..bytes.len() {
        let mut corrupt = bytes.clone();
        corrupt[index] ^= 0x01;
        let verified = parse_gov_envelope(&corrupt).and_then(|e| e.verify(key.verifying_key()));
        assert!(verified.is_err(), "flip at {index} accepted");
    }
}

#[test]
fn cose_signature_json_round_trip() {
    let key = SigningKey::generate_p384().unwrap();
    let cose = sign_ccf_root(&key, &root(), TxId::new(1, 7), NOW, "iss", "sub");
    let json = cose_signature_to_json(&cose);
    assert_eq!(json.first(), Some(&b'"'));
    assert_eq!(cose_signature_from_json(&json).unwrap(), cose);
    assert!(cose_signature_from_json(b"{}").is_err());
    assert!(cose_signature_from_json(b"\"!!\"").is_err());
}

/// CCF's `create_cose_sign1` (what `ccf_cose_sign1` runs) signs with our key and
/// certificate: our parser and verifier accept it and our protected header is
/// byte-identical; CCF's `verify_cose_sign1_with_cert` accepts ours.
#[test]
fn ccf_python_agrees_on_gov_envelopes() {
    use crate::test_python::{ccf_python, run_python};
    let Some(python) = ccf_python() else { return };
    for (key, proposal_id) in [
        (SigningKey::generate_p384().unwrap(), None),
        (SigningKey::generate_p256().unwrap(), Some("0f".repeat(32))),
    ] {
        let cert = Certificate::self_signed_identity(&key, "member0", NOW, 365).unwrap();
        let kid = cert.sha256_der().to_hex();
        let msg_type = if proposal_id.is_some() { "ballot" } else { "proposal" };
        let payload = br#"{"actions":[{"name":"set_constitution"}]}"#;
        let ours = sign_gov_envelope(&key, &kid, msg_type, NOW, proposal_id.as_deref(), payload);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key.pem"), key.to_pkcs8_pem()).unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert.to_pem()).unwrap();
        std::fs::write(dir.path().join("payload"), payload).unwrap();
        std::fs::write(dir.path().join("ours.cose"), &ours).unwrap();
        let proposal_header = proposal_id
            .as_deref()
            .map(|id| format!(r#"header["ccf.gov.msg.proposal_id"] = "{id}""#))
            .unwrap_or_default();
        let script = format!(
            r#"
import ccf.cose
key = open("key.pem").read()
cert = open("cert.pem").read()
header = {{"ccf.gov.msg.type": "{msg_type}", "ccf.gov.msg.created_at": {NOW}}}
{proposal_header}
theirs = ccf.cose.create_cose_sign1(open("payload", "rb").read(), key, cert, header)
open("theirs.cose", "wb").write(theirs)
phdr, _, payload = ccf.cose.verify_cose_sign1_with_cert(
    cert.encode(), open("ours.cose", "rb").read(), use_key=False)
assert payload == open("payload", "rb").read()
assert phdr["ccf.gov.msg.type"] == "{msg_type}", phdr
print("ok")
"#
        );
        assert_eq!(run_python(&python, &script, dir.path()).trim(), "ok");
        let theirs = std::fs::read(dir.path().join("theirs.cose")).unwrap();
        let envelope = parse_gov_envelope(&theirs).unwrap();
        envelope.verify(&cert.verifying_key().unwrap()).unwrap();
        assert_eq!(envelope.kid, kid);
        assert_eq!(envelope.msg_type, msg_type);
        assert_eq!(envelope.created_at, NOW);
        assert_eq!(envelope.proposal_id, proposal_id);
        let our_envelope = parse_gov_envelope(&ours).unwrap();
        assert_eq!(
            hex::encode(&envelope.protected_bytes),
            hex::encode(&our_envelope.protected_bytes)
        );
        // Same bytes up to the signature.
        let signature_bytes = key.curve().raw_signature_bytes();
        assert_eq!(theirs.len(), ours.len());
        assert_eq!(theirs[..theirs.len() - signature_bytes], ours[..ours.len() - signature_bytes]);
    }
}
