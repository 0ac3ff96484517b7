use aws_lc_rs::digest::{Digest as LcDigest, SHA256};
use aws_lc_rs::signature::{ECDSA_P384_SHA256_ASN1, UnparsedPublicKey};

use super::*;

fn keys() -> [SigningKey; 2] {
    [SigningKey::generate_p384().unwrap(), SigningKey::generate_p256().unwrap()]
}

#[test]
fn pem_round_trip_keeps_the_key() {
    for key in keys() {
        let pem = key.to_pkcs8_pem();
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let back = SigningKey::from_pkcs8_pem(&pem).unwrap();
        assert_eq!(back.curve(), key.curve());
        assert_eq!(back.public_key_der(), key.public_key_der());
        assert_eq!(key.clone().public_key_der(), key.public_key_der());
        assert!(!format!("{key:?}").contains(&hex::encode(key.to_pkcs8_der())));
    }
    assert_eq!(SigningKey::generate_p384().unwrap().cose_alg(), CoseAlgorithm::Es384);
    assert_eq!(SigningKey::generate_p256().unwrap().cose_alg().label(), -7);
}

#[test]
fn garbage_keys_are_errors() {
    assert!(matches!(SigningKey::from_pkcs8_pem("garbage"), Err(Error::Malformed { .. })));
    let not_a_key = pem_encode("PRIVATE KEY", b"\x30\x03\x02\x01\x00");
    assert!(matches!(SigningKey::from_pkcs8_pem(&not_a_key), Err(Error::InvalidKey(_))));
    assert!(SigningKey::from_pkcs8_der(&[]).is_err());
    assert!(VerifyingKey::from_spki_der(b"not der").is_err());
    // A bare SEC1 point is not an SPKI even though aws-lc would accept it.
    let key = SigningKey::generate_p384().unwrap();
    let spki = key.public_key_der();
    let point = &spki[spki.len() - 97..];
    assert!(matches!(VerifyingKey::from_spki_der(point), Err(Error::InvalidKey(_))));
}

#[test]
fn sec1_pem_is_accepted() {
    // openssl ecparam -name secp384r1 -genkey -noout, as CCF's keygenerator.sh does.
    let sec1 = "-----BEGIN EC PRIVATE KEY-----
MIGkAgEBBDC/fwtTl0FrGyaYat/1iQqF6Bb2cJeVaY4fgcd27bWIZ/G/Vxv7u4Kg
C/y1DZ09JTygBwYFK4EEACKhZANiAAT+O4XsIVz9LojLkPgIrq9MGqUG9Yh8/QZX
VqD+1iqQz116/gxHRDZeIaBoNJ84XkJffz/rsMACiUPo30OMAuZv2M7kw1iYOntD
JHru4nyxCsOCOdIzR1/7uv4deOgi08A=
-----END EC PRIVATE KEY-----
";
    let key = SigningKey::from_pkcs8_pem(sec1).unwrap();
    assert_eq!(key.curve(), Curve::P384);
    let again = SigningKey::from_pkcs8_pem(&key.to_pkcs8_pem()).unwrap();
    assert_eq!(again.public_key_der(), key.public_key_der());
}

#[test]
fn prehashed_signature_verifies_as_p384_sha256() {
    let key = SigningKey::generate_p384().unwrap();
    let root = sha256(b"merkle root");
    let signature = key.sign_prehashed_sha256(&root);
    // Independent check with aws-lc-rs's own P-384 + SHA-256 verifier.
    let imported = LcDigest::import_less_safe(root.as_bytes(), &SHA256).unwrap();
    UnparsedPublicKey::new(&ECDSA_P384_SHA256_ASN1, key.public_key_der())
        .verify_digest(&imported, &signature)
        .unwrap();
    key.verifying_key().verify_prehashed_sha256(&root, &signature).unwrap();
    let other = sha256(b"other root");
    assert_eq!(
        key.verifying_key().verify_prehashed_sha256(&other, &signature),
        Err(Error::BadSignature)
    );
}

#[test]
fn signatures_reject_tampering_and_wrong_keys() {
    for key in keys() {
        let verifying = key.verifying_key();
        let root = sha256(b"root");
        let mut der = key.sign_prehashed_sha256(&root);
        verifying.verify_prehashed_sha256(&root, &der).unwrap();
        let last = der.len() - 1;
        der[last] ^= 1;
        assert_eq!(verifying.verify_prehashed_sha256(&root, &der), Err(Error::BadSignature));
        assert_eq!(verifying.verify_prehashed_sha256(&root, b""), Err(Error::BadSignature));

        let mut raw = key.sign_cose(b"message");
        assert_eq!(raw.len(), key.curve().raw_signature_bytes());
        verifying.verify_cose(b"message", &raw).unwrap();
        assert_eq!(verifying.verify_cose(b"messagE", &raw), Err(Error::BadSignature));
        assert_eq!(verifying.verify_cose(b"message", &raw[1..]), Err(Error::BadSignature));
        raw[0] ^= 0x80;
        assert_eq!(verifying.verify_cose(b"message", &raw), Err(Error::BadSignature));

        let stranger = SigningKey::generate(key.curve()).unwrap();
        let good = key.sign_cose(b"message");
        assert_eq!(
            stranger.verifying_key().verify_cose(b"message", &good),
            Err(Error::BadSignature)
        );
    }
}

#[test]
fn cose_algorithm_labels() {
    assert_eq!(CoseAlgorithm::from_label(-35), Ok(CoseAlgorithm::Es384));
    assert_eq!(CoseAlgorithm::from_label(-7), Ok(CoseAlgorithm::Es256));
    assert_eq!(CoseAlgorithm::from_label(-36), Err(Error::UnsupportedAlgorithm(-36)));
    assert_eq!(CoseAlgorithm::Es384.curve(), Curve::P384);
}
