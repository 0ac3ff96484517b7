//! TLS configuration: trust exactly one root, the service certificate, and optionally
//! present a client certificate (a user's or member's identity).
//!
//! A Coco node's TLS certificate is a node certificate endorsed by the service key, so the
//! service certificate is the only trust anchor a client needs; the public web PKI is never
//! consulted. Two rustls configurations are kept, one per ALPN protocol, because ALPN is
//! fixed per configuration.

use std::sync::Arc;

use coco_crypto::{Certificate, PEM_LABEL_CERTIFICATE, SigningKey, pem_decode_all};
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::{Error, Protocol, Result};

/// A client's identity: a certificate chain (leaf first) and its private key, both PEM.
/// The key may be PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`).
#[derive(Clone)]
pub struct ClientIdentity {
    /// The certificate chain, leaf first, PEM.
    pub cert_pem: String,
    /// The private key of the leaf, PEM (secret).
    pub key_pem: String,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity").field("key_pem", &"<secret>").finish_non_exhaustive()
    }
}

/// TLS settings shared by every connection a [`crate::Client`] opens.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    http1: Arc<rustls::ClientConfig>,
    http2: Arc<rustls::ClientConfig>,
}

impl ClientConfig {
    /// Builds rustls configurations (aws-lc-rs provider, TLS 1.2 and 1.3) that trust only
    /// `service_cert_pem` and present `identity` when given.
    ///
    /// # Errors
    /// [`Error::Identity`] if a certificate or key does not parse or the key does not match
    /// the certificate; [`Error::TlsConfig`] if rustls refuses the result.
    pub fn new(service_cert_pem: &str, identity: Option<&ClientIdentity>) -> Result<Self> {
        // Installing a process default lets other rustls users in the same process (tests,
        // the binary) find one provider; a second install attempt fails harmlessly.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let service_cert = Certificate::from_pem(service_cert_pem)
            .map_err(|source| Error::Identity { what: "service certificate", source })?;
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from(service_cert.der().to_vec()))?;
        let roots = Arc::new(roots);
        let identity = identity.map(parse_identity).transpose()?;
        let build = |alpn: &[u8]| -> Result<Arc<rustls::ClientConfig>> {
            let provider: Arc<CryptoProvider> =
                Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let builder = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .with_root_certificates(Arc::clone(&roots));
            let mut config = match &identity {
                Some((chain, key)) => {
                    builder.with_client_auth_cert(chain.clone(), key.clone_key())?
                }
                None => builder.with_no_client_auth(),
            };
            config.alpn_protocols = vec![alpn.to_vec()];
            Ok(Arc::new(config))
        };
        Ok(Self { http1: build(b"http/1.1")?, http2: build(b"h2")? })
    }

    /// The rustls configuration whose ALPN offers `protocol`.
    #[must_use]
    pub fn rustls_config(&self, protocol: Protocol) -> Arc<rustls::ClientConfig> {
        match protocol {
            Protocol::Http1 => Arc::clone(&self.http1),
            Protocol::Http2 => Arc::clone(&self.http2),
        }
    }
}

/// Parses the chain and key, and checks that the key belongs to the leaf, so a mismatched
/// pair fails here rather than as an opaque handshake failure.
fn parse_identity(
    identity: &ClientIdentity,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let cert_error = |source| Error::Identity { what: "client certificate", source };
    let chain: Vec<Certificate> = pem_decode_all(&identity.cert_pem)
        .map_err(cert_error)?
        .into_iter()
        .filter(|(label, _)| label == PEM_LABEL_CERTIFICATE)
        .map(|(_, der)| Certificate::from_der(&der))
        .collect::<coco_crypto::Result<_>>()
        .map_err(cert_error)?;
    let Some(leaf) = chain.first() else {
        return Err(cert_error(coco_crypto::Error::Malformed {
            what: "client certificate",
            reason: "no CERTIFICATE block".into(),
        }));
    };
    let key = SigningKey::from_pkcs8_pem(&identity.key_pem)
        .map_err(|source| Error::Identity { what: "client private key", source })?;
    if leaf.public_key_spki_der() != key.public_key_der() {
        return Err(Error::Identity {
            what: "client private key",
            source: coco_crypto::Error::InvalidKey("key does not match the client certificate"),
        });
    }
    let chain = chain.iter().map(|cert| CertificateDer::from(cert.der().to_vec())).collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_pkcs8_der().to_vec()));
    Ok((chain, key))
}
