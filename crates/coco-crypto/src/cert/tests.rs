use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;

use super::*;

const NOW: u64 = 1_750_000_000;

struct Service {
    key: SigningKey,
    cert: Certificate,
    node_key: SigningKey,
    node_cert: Certificate,
}

fn service() -> Service {
    let key = SigningKey::generate_p384().unwrap();
    let cert = Certificate::service_identity(&key, NOW, 365).unwrap();
    let node_key = SigningKey::generate_p384().unwrap();
    let sans = ["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
    let node_cert =
        Certificate::endorse_node(node_key.verifying_key(), &key, &cert, &sans, NOW, 30).unwrap();
    Service { key, cert, node_key, node_cert }
}

fn unix_time(seconds: u64) -> UnixTime {
    UnixTime::since_unix_epoch(Duration::from_secs(seconds))
}

#[test]
fn identity_fields() {
    let key = SigningKey::generate_p256().unwrap();
    let cert = Certificate::self_signed_identity(&key, "member0", NOW, 10).unwrap();
    assert_eq!(cert.subject_common_name().as_deref(), Some("member0"));
    let period = i64::try_from(NOW).unwrap();
    assert_eq!(cert.validity(), Validity { not_before: period, not_after: period + 10 * 86_400 });
    assert!(cert.validity().contains(period));
    assert!(!cert.validity().contains(period - 1));
    assert_eq!(cert.public_key_spki_der(), key.public_key_der());
    assert_eq!(cert.verifying_key().unwrap(), *key.verifying_key());
    assert_eq!(cert.sha256_der(), sha256(cert.der()));
    cert.is_signed_by(&cert).unwrap();
    // Deterministic: same inputs, same certificate bytes (ECDSA nonces aside, the TBS).
    let again = Certificate::self_signed_identity(&key, "member0", NOW, 10).unwrap();
    assert_eq!(again.validity(), cert.validity());
}

#[test]
fn pem_round_trip_and_garbage() {
    let Service { cert, .. } = service();
    let pem = cert.to_pem();
    assert_eq!(Certificate::from_pem(&pem).unwrap(), cert);
    assert!(matches!(Certificate::from_pem("garbage"), Err(Error::Malformed { .. })));
    assert!(Certificate::from_der(b"\x30\x03\x02\x01\x00").is_err());
    let mut trailing = cert.der().to_vec();
    trailing.push(0);
    assert!(Certificate::from_der(&trailing).is_err());
    for cut in [0, 1, 10, cert.der().len() / 2, cert.der().len() - 1] {
        assert!(Certificate::from_der(&cert.der()[..cut]).is_err());
    }
}

#[test]
fn node_certificate_is_endorsed_by_the_service() {
    let Service { key, cert, node_key, node_cert } = service();
    assert_eq!(cert.subject_common_name().as_deref(), Some(SERVICE_COMMON_NAME));
    assert_eq!(node_cert.subject_common_name().as_deref(), Some(NODE_COMMON_NAME));
    assert_eq!(node_cert.public_key_spki_der(), node_key.public_key_der());
    node_cert.is_signed_by(&cert).unwrap();
    cert.is_signed_by(&cert).unwrap();
    assert_eq!(node_cert.is_signed_by(&node_cert), Err(Error::BadSignature));
    let other = Certificate::service_identity(&SigningKey::generate_p384().unwrap(), NOW, 1);
    assert_eq!(node_cert.is_signed_by(&other.unwrap()), Err(Error::BadSignature));
    // A service key that is not the certificate's is refused.
    let wrong = SigningKey::generate_p384().unwrap();
    let refused = Certificate::endorse_node(node_key.verifying_key(), &wrong, &cert, &[], NOW, 1);
    assert!(matches!(refused, Err(Error::InvalidKey(_))));
    // A flipped bit in the signature is refused.
    let mut der = node_cert.der().to_vec();
    let last = der.len() - 1;
    der[last] ^= 1;
    if let Ok(flipped) = Certificate::from_der(&der) {
        assert!(flipped.is_signed_by(&cert).is_err());
    }
    let _ = key;
}

#[test]
fn node_certificate_validates_under_webpki() {
    let Service { cert, node_cert, .. } = service();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(cert.der().to_vec())).unwrap();
    let roots = Arc::new(roots);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .unwrap();
    let leaf = CertificateDer::from(node_cert.der().to_vec());
    for name in ["localhost", "127.0.0.1", "::1"] {
        let name = ServerName::try_from(name).unwrap();
        verifier.verify_server_cert(&leaf, &[], &name, &[], unix_time(NOW + 60)).unwrap();
    }
    let wrong_name = ServerName::try_from("example.com").unwrap();
    assert!(verifier.verify_server_cert(&leaf, &[], &wrong_name, &[], unix_time(NOW)).is_err());
    let localhost = ServerName::try_from("localhost").unwrap();
    let expired = unix_time(NOW + 31 * 86_400);
    assert!(verifier.verify_server_cert(&leaf, &[], &localhost, &[], expired).is_err());
    let client = WebPkiClientVerifier::builder_with_provider(roots, provider).build().unwrap();
    client.verify_client_cert(&leaf, &[], unix_time(NOW + 60)).unwrap();
}

/// OpenSSL (what curl uses) validates the chain for TLS server and client purposes.
/// Skipped when no `openssl` binary is installed.
#[test]
fn node_certificate_validates_under_openssl() {
    let Service { cert, node_cert, .. } = service();
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("service.pem");
    let leaf = dir.path().join("node.pem");
    std::fs::write(&ca, cert.to_pem()).unwrap();
    std::fs::write(&leaf, node_cert.to_pem()).unwrap();
    for (purpose, extra) in [
        ("sslserver", ["-verify_hostname", "localhost"]),
        ("sslclient", ["-verify_ip", "127.0.0.1"]),
    ] {
        let output = std::process::Command::new("openssl")
            .args(["verify", "-attime", &(NOW + 60).to_string(), "-purpose", purpose])
            .args(extra)
            .arg("-CAfile")
            .arg(&ca)
            .arg(&leaf)
            .output();
        let Ok(output) = output else {
            eprintln!("openssl not installed; skipping");
            return;
        };
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "openssl verify {purpose}: {stdout} {stderr}");
    }
}

#[test]
fn validity_beyond_x509_is_refused() {
    let key = SigningKey::generate_p256().unwrap();
    let late = Certificate::self_signed_identity(&key, "m", X509_TIME_MAX_UNIX_SECONDS, 1);
    assert!(matches!(late, Err(Error::Validity(_))));
    let overflow = Certificate::self_signed_identity(&key, "m", u64::MAX, 1);
    assert!(matches!(overflow, Err(Error::Validity(_))));
}
