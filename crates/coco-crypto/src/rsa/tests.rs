use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use super::*;
use crate::test_python::{ccf_python, run_python};

/// One 2048-bit key shared by the tests: generation is the slow part.
fn key() -> &'static RsaPrivateKey {
    static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| RsaPrivateKey::generate(2048).unwrap())
}

#[test]
fn encrypt_decrypt_round_trip_is_randomised() {
    let key = key();
    assert_eq!(key.bits(), 2048);
    let share = [0x5au8; 35];
    let public = key.public_key();
    let first = public.encrypt_oaep_sha256(&share).unwrap();
    let second = public.encrypt_oaep_sha256(&share).unwrap();
    assert_eq!(first.len(), 256);
    assert_ne!(first, second);
    assert_eq!(key.decrypt_oaep_sha256(&first).unwrap(), share);
    assert_eq!(key.decrypt_oaep_sha256(&second).unwrap(), share);
    assert_eq!(key.decrypt_oaep_sha256(&public.encrypt_oaep_sha256(b"").unwrap()).unwrap(), b"");
}

#[test]
fn plaintext_limit_is_enforced() {
    let public = key().public_key();
    assert_eq!(public.max_plaintext_len(), 190);
    let longest = vec![1u8; 190];
    let ciphertext = public.encrypt_oaep_sha256(&longest).unwrap();
    assert_eq!(key().decrypt_oaep_sha256(&ciphertext).unwrap(), longest);
    assert_eq!(
        public.encrypt_oaep_sha256(&[1u8; 191]),
        Err(Error::PlaintextTooLong { length: 191, max: 190 })
    );
}

#[test]
fn tampered_truncated_and_foreign_ciphertexts_are_refused() {
    let key = key();
    let ciphertext = key.public_key().encrypt_oaep_sha256(b"share").unwrap();
    for cut in 0..ciphertext.len() {
        assert_eq!(key.decrypt_oaep_sha256(&ciphertext[..cut]), Err(Error::Decrypt), "{cut}");
    }
    let mut long = ciphertext.clone();
    long.push(0);
    assert_eq!(key.decrypt_oaep_sha256(&long), Err(Error::Decrypt));
    for index in [0, 1, 100, 255] {
        let mut bad = ciphertext.clone();
        bad[index] ^= 0x80;
        assert_eq!(key.decrypt_oaep_sha256(&bad), Err(Error::Decrypt), "byte {index}");
    }
    let other = RsaPrivateKey::generate(2048).unwrap();
    assert_eq!(other.decrypt_oaep_sha256(&ciphertext), Err(Error::Decrypt));
}

#[test]
fn pem_round_trips() {
    let key = key();
    let pem = key.to_pem();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    let again = RsaPrivateKey::from_pem(&pem).unwrap();
    assert_eq!(again.to_pkcs8_der(), key.to_pkcs8_der());
    assert_eq!(again.public_key(), key.public_key());
    let public_pem = key.public_key_pem();
    assert!(public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    let public = RsaPublicKey::from_pem(&public_pem).unwrap();
    assert_eq!(&public, key.public_key());
    assert_eq!(public.to_pem(), public_pem);
    let ciphertext = public.encrypt_oaep_sha256(b"via pem").unwrap();
    assert_eq!(again.decrypt_oaep_sha256(&ciphertext).unwrap(), b"via pem");
    assert!(format!("{key:?}").starts_with("RsaPrivateKey(2048 bits"));
}

#[test]
fn other_sizes_and_bad_keys() {
    for bits in [3072, 4096] {
        let key = RsaPrivateKey::generate(bits).unwrap();
        assert_eq!(key.bits(), bits);
        let ciphertext = key.public_key().encrypt_oaep_sha256(b"x").unwrap();
        assert_eq!(ciphertext.len(), usize::try_from(bits / 8).unwrap());
        assert_eq!(key.decrypt_oaep_sha256(&ciphertext).unwrap(), b"x");
    }
    for bits in [0, 1024, 2047, 8192] {
        assert!(matches!(RsaPrivateKey::generate(bits), Err(Error::InvalidKey(_))), "{bits}");
    }
    // An EC key is a valid PKCS#8 / SPKI document, but not RSA.
    let ec = crate::SigningKey::generate(crate::Curve::P384).unwrap();
    assert!(matches!(RsaPrivateKey::from_pem(&ec.to_pkcs8_pem()), Err(Error::Malformed { .. })));
    assert!(matches!(RsaPublicKey::from_der(&ec.public_key_der()), Err(Error::Malformed { .. })));
    let der = key().to_pkcs8_der();
    for cut in [0, 1, 10, der.len() / 2, der.len() - 1] {
        assert!(matches!(RsaPrivateKey::from_pkcs8_der(&der[..cut]), Err(Error::Malformed { .. })));
    }
    let spki = key().public_key().to_der();
    for cut in 0..spki.len() {
        assert!(matches!(RsaPublicKey::from_der(&spki[..cut]), Err(Error::Malformed { .. })));
    }
    assert!(RsaPublicKey::from_pem("garbage").is_err());
    assert!(RsaPrivateKey::from_pem(&key().public_key_pem()).is_err());
}

const PYTHON_STAGE_ONE: &str = r#"
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
oaep = padding.OAEP(
    mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
)
ours = serialization.load_pem_public_key(open("ours_pub.pem", "rb").read())
open("to_ours.bin", "wb").write(ours.encrypt(b"share from python", oaep))
theirs = rsa.generate_private_key(public_exponent=65537, key_size=2048)
open("theirs_priv.pem", "wb").write(theirs.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
open("theirs_pub.pem", "wb").write(theirs.public_key().public_bytes(serialization.Encoding.PEM,
    serialization.PublicFormat.SubjectPublicKeyInfo))
"#;

const PYTHON_STAGE_TWO: &str = r#"
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
oaep = padding.OAEP(
    mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
)
theirs = serialization.load_pem_private_key(open("theirs_priv.pem", "rb").read(), password=None)
ours = serialization.load_pem_private_key(open("ours_priv.pem", "rb").read(), password=None)
print(theirs.decrypt(open("to_theirs.bin", "rb").read(), oaep).hex())
print(ours.decrypt(open("to_ours_by_rust.bin", "rb").read(), oaep).hex())
"#;

#[test]
fn python_cryptography_interoperates_both_ways() {
    let Some(python) = ccf_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let key = key();
    std::fs::write(dir.path().join("ours_pub.pem"), key.public_key_pem()).unwrap();
    std::fs::write(dir.path().join("ours_priv.pem"), key.to_pem()).unwrap();
    run_python(&python, PYTHON_STAGE_ONE, dir.path());

    let from_python = std::fs::read(dir.path().join("to_ours.bin")).unwrap();
    assert_eq!(key.decrypt_oaep_sha256(&from_python).unwrap(), b"share from python");
    let theirs_pem = std::fs::read_to_string(dir.path().join("theirs_pub.pem")).unwrap();
    let theirs = RsaPublicKey::from_pem(&theirs_pem).unwrap();
    let theirs_private = std::fs::read_to_string(dir.path().join("theirs_priv.pem")).unwrap();
    assert_eq!(RsaPrivateKey::from_pem(&theirs_private).unwrap().public_key(), &theirs);
    let to_theirs = theirs.encrypt_oaep_sha256(b"share from rust").unwrap();
    std::fs::write(dir.path().join("to_theirs.bin"), to_theirs).unwrap();
    let to_ours = key.public_key().encrypt_oaep_sha256(b"own key").unwrap();
    std::fs::write(dir.path().join("to_ours_by_rust.bin"), to_ours).unwrap();

    let output = run_python(&python, PYTHON_STAGE_TWO, dir.path());
    let lines: Vec<&str> = output.lines().collect();
    assert_eq!(lines, [hex::encode(b"share from rust"), hex::encode(b"own key")]);
}

#[test]
fn openssl_traditional_pkcs1_private_keys_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["genrsa", "-traditional", "-out", "rsa.pem", "2048"];
    if openssl(dir.path(), &args).is_none() {
        eprintln!("no openssl CLI; skipping the PKCS#1 check");
        return;
    }
    let pem = std::fs::read_to_string(dir.path().join("rsa.pem")).unwrap();
    assert!(pem.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let key = RsaPrivateKey::from_pem(&pem).unwrap();
    assert_eq!(key.bits(), 2048);
    let public_args = ["rsa", "-in", "rsa.pem", "-pubout"];
    let public = String::from_utf8(openssl(dir.path(), &public_args).unwrap()).unwrap();
    assert_eq!(&RsaPublicKey::from_pem(&public).unwrap(), key.public_key());
    let ciphertext = key.public_key().encrypt_oaep_sha256(b"pkcs1").unwrap();
    assert_eq!(key.decrypt_oaep_sha256(&ciphertext).unwrap(), b"pkcs1");
    // Its PKCS#8 re-export loads back to the same key.
    assert_eq!(RsaPrivateKey::from_pem(&key.to_pem()).unwrap().public_key(), key.public_key());
    let broken =
        pem.replace("-----BEGIN RSA PRIVATE KEY-----\n", "-----BEGIN RSA PRIVATE KEY-----\nAAAA");
    assert!(RsaPrivateKey::from_pem(&broken).is_err());
}

/// Runs `openssl` with `args` in `dir`, or `None` if there is no `openssl` to run.
fn openssl(dir: &Path, args: &[&str]) -> Option<Vec<u8>> {
    let output = Command::new("openssl").args(args).current_dir(dir).output().ok()?;
    assert!(output.status.success(), "openssl failed: {}", String::from_utf8_lossy(&output.stderr));
    Some(output.stdout)
}

#[test]
fn openssl_pkeyutl_interoperates_as_submit_recovery_share_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = key();
    std::fs::write(dir.path().join("priv.pem"), key.to_pem()).unwrap();
    std::fs::write(dir.path().join("pub.pem"), key.public_key_pem()).unwrap();
    let ciphertext = key.public_key().encrypt_oaep_sha256(b"encrypted share").unwrap();
    std::fs::write(dir.path().join("share.enc"), ciphertext).unwrap();
    let oaep = ["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256"];
    let decrypt = [&["pkeyutl", "-decrypt", "-inkey", "priv.pem", "-in", "share.enc"], &oaep[..]];
    let Some(plaintext) = openssl(dir.path(), &decrypt.concat()) else {
        eprintln!("no openssl CLI; skipping the openssl cross-check");
        return;
    };
    assert_eq!(plaintext, b"encrypted share");

    std::fs::write(dir.path().join("plain.bin"), b"from openssl").unwrap();
    let encrypt =
        [&["pkeyutl", "-encrypt", "-pubin", "-inkey", "pub.pem", "-in", "plain.bin"], &oaep[..]];
    let from_openssl = openssl(dir.path(), &encrypt.concat()).unwrap();
    assert_eq!(key.decrypt_oaep_sha256(&from_openssl).unwrap(), b"from openssl");
}
