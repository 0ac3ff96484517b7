//! X.509 certificates: member and user identities, the service certificate (a
//! self-signed CA) and node certificates endorsed by it.
//!
//! A [`Certificate`] holds DER that parsed once; fields are read on demand with
//! x509-parser, and certificates are generated with rcgen on the aws-lc-rs backend.
//! Time is an input (`now_unix_seconds`), never read from the OS.

use std::net::IpAddr;
use std::time::Duration;

use coco_types::Digest;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::prelude::FromDer as _;

use crate::ecdsa::{SigningKey, VerifyingKey};
use crate::pem::{PEM_LABEL_CERTIFICATE, pem_decode, pem_encode};
use crate::{Error, Result, Sha256, sha256};

/// Subject common name of the service certificate, as CCF names it.
pub const SERVICE_COMMON_NAME: &str = "CCF Service";
/// Subject common name of node certificates, as CCF names them.
pub const NODE_COMMON_NAME: &str = "CCF Node";

/// Latest instant X.509 can express (9999-12-31T23:59:59Z), in unix seconds.
const X509_TIME_MAX_UNIX_SECONDS: u64 = 253_402_300_799;
const SECONDS_PER_DAY: u64 = 86_400;

/// The validity period of a certificate, in unix seconds, both ends inclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// First second the certificate is valid.
    pub not_before: i64,
    /// Last second the certificate is valid.
    pub not_after: i64,
}

impl Validity {
    /// Whether `unix_seconds` falls inside the period.
    #[must_use]
    pub const fn contains(&self, unix_seconds: i64) -> bool {
        self.not_before <= unix_seconds && unix_seconds <= self.not_after
    }
}

/// An X.509 certificate that parsed as DER when it was built.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Certificate {
    der: Vec<u8>,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = self.subject_common_name().unwrap_or_default();
        write!(f, "Certificate({name:?}, {})", self.sha256_der())
    }
}

impl Certificate {
    /// Wraps DER after checking that it parses as one certificate with no trailing bytes.
    ///
    /// # Errors
    /// [`Error::Malformed`] if it does not.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let (rest, _) = X509Certificate::from_der(der)
            .map_err(|error| Error::Malformed { what: "certificate", reason: error.to_string() })?;
        if !rest.is_empty() {
            return Err(Error::Malformed { what: "certificate", reason: "trailing bytes".into() });
        }
        Ok(Self { der: der.to_vec() })
    }

    /// Parses the first `CERTIFICATE` block of a PEM document.
    ///
    /// # Errors
    /// [`Error::Malformed`] for broken PEM or DER.
    pub fn from_pem(pem: &str) -> Result<Self> {
        Self::from_der(&pem_decode(PEM_LABEL_CERTIFICATE, pem)?)
    }

    /// The PEM encoding (`CERTIFICATE`).
    #[must_use]
    pub fn to_pem(&self) -> String {
        pem_encode(PEM_LABEL_CERTIFICATE, &self.der)
    }

    /// The DER encoding.
    #[must_use]
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    fn parsed(&self) -> X509Certificate<'_> {
        X509Certificate::from_der(&self.der)
            .expect("the DER parsed when this Certificate was built")
            .1
    }

    /// SHA-256 of the DER: a member's or user's id in CCF.
    #[must_use]
    pub fn sha256_der(&self) -> Digest {
        sha256(&self.der)
    }

    /// The subject public key as `SubjectPublicKeyInfo` DER.
    #[must_use]
    pub fn public_key_spki_der(&self) -> Vec<u8> {
        self.parsed().public_key().raw.to_vec()
    }

    /// The subject public key, if it is P-256 or P-384.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] for other keys (RSA, Ed25519, other curves).
    pub fn verifying_key(&self) -> Result<VerifyingKey> {
        VerifyingKey::from_spki_der(&self.public_key_spki_der())
    }

    /// The validity period.
    #[must_use]
    pub fn validity(&self) -> Validity {
        let parsed = self.parsed();
        let validity = parsed.validity();
        Validity {
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
        }
    }

    /// The first subject common name, if any and if it is a string.
    #[must_use]
    pub fn subject_common_name(&self) -> Option<String> {
        let parsed = self.parsed();
        let common_name = parsed.subject().iter_common_name().next()?;
        common_name.as_str().ok().map(str::to_owned)
    }

    /// Checks that `issuer`'s public key signed this certificate's TBS, with this
    /// certificate's signature algorithm: what CCF's `check_endorsement` does. Names,
    /// validity and extensions are not checked (TLS clients check those).
    ///
    /// # Errors
    /// [`Error::BadSignature`] if the signature does not verify;
    /// [`Error::Malformed`] if the algorithm or key type is unsupported.
    pub fn is_signed_by(&self, issuer: &Self) -> Result<()> {
        let issuer_parsed = issuer.parsed();
        match self.parsed().verify_signature(Some(issuer_parsed.public_key())) {
            Ok(()) => Ok(()),
            Err(X509Error::SignatureVerificationError) => Err(Error::BadSignature),
            Err(other) => {
                Err(Error::Malformed { what: "certificate signature", reason: other.to_string() })
            }
        }
    }
}

impl VerifyingKey {
    /// The public key of `certificate`.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] if it is not P-256 or P-384.
    pub fn from_certificate(certificate: &Certificate) -> Result<Self> {
        certificate.verifying_key()
    }
}

/// Generation with rcgen.
impl Certificate {
    /// A self-signed leaf for a member or user identity (`CN=<common_name>`), valid for
    /// `validity_days` from `now_unix_seconds`.
    ///
    /// # Errors
    /// [`Error::Validity`] if the period does not fit X.509 time;
    /// [`Error::CertificateGeneration`] if rcgen refuses the parameters.
    pub fn self_signed_identity(
        key: &SigningKey,
        common_name: &str,
        now_unix_seconds: u64,
        validity_days: u32,
    ) -> Result<Self> {
        let mut params =
            base_params(key.verifying_key(), common_name, now_unix_seconds, validity_days)?;
        params.is_ca = IsCa::NoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key_pair = rcgen_key_pair(key)?;
        let certificate = params.self_signed(&key_pair).map_err(generation_error)?;
        Self::from_der(certificate.der())
    }

    /// The service certificate: a self-signed CA (`CN=CCF Service`, basicConstraints
    /// CA:true, keyUsage keyCertSign + digitalSignature, SKI and AKI) that endorses nodes.
    ///
    /// # Errors
    /// As [`Self::self_signed_identity`].
    pub fn service_identity(
        key: &SigningKey,
        now_unix_seconds: u64,
        validity_days: u32,
    ) -> Result<Self> {
        let mut params =
            base_params(key.verifying_key(), SERVICE_COMMON_NAME, now_unix_seconds, validity_days)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        let key_pair = rcgen_key_pair(key)?;
        let certificate = params.self_signed(&key_pair).map_err(generation_error)?;
        Self::from_der(certificate.der())
    }

    /// A node certificate (`CN=CCF Node`, `subject_alt_names` as DNS names or IP
    /// addresses, AKI of the service, keyUsage digitalSignature, extendedKeyUsage
    /// serverAuth + clientAuth) for `node_key`, signed by the service key.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] if `service_key` is not `service_cert`'s key;
    /// [`Error::CertificateGeneration`] for an invalid DNS name; as
    /// [`Self::self_signed_identity`] otherwise.
    ///
    /// # Panics
    /// If rcgen's output does not verify under the service key (a bug, not an input).
    pub fn endorse_node(
        node_key: &VerifyingKey,
        service_key: &SigningKey,
        service_cert: &Self,
        subject_alt_names: &[String],
        now_unix_seconds: u64,
        validity_days: u32,
    ) -> Result<Self> {
        if service_cert.public_key_spki_der() != service_key.public_key_der() {
            return Err(Error::InvalidKey("service key does not match the service certificate"));
        }
        let mut params = base_params(node_key, NODE_COMMON_NAME, now_unix_seconds, validity_days)?;
        params.subject_alt_names = subject_alt_names
            .iter()
            .map(|name| match name.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => rcgen::string::Ia5String::try_from(name.as_str())
                    .map(SanType::DnsName)
                    .map_err(generation_error),
            })
            .collect::<Result<_>>()?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages =
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let issuer_der = service_cert.der.clone().into();
        let issuer = Issuer::from_ca_cert_der(&issuer_der, rcgen_key_pair(service_key)?)
            .map_err(generation_error)?;
        let subject_key =
            rcgen::SubjectPublicKeyInfo::from_der(node_key.spki_der()).map_err(generation_error)?;
        let certificate = params.signed_by(&subject_key, &issuer).map_err(generation_error)?;
        let certificate = Self::from_der(certificate.der())?;
        assert!(
            certificate.is_signed_by(service_cert).is_ok(),
            "rcgen signed with the service key"
        );
        Ok(certificate)
    }
}

/// Subject, validity and a deterministic serial shared by every certificate we make.
fn base_params(
    subject_key: &VerifyingKey,
    common_name: &str,
    now_unix_seconds: u64,
    validity_days: u32,
) -> Result<CertificateParams> {
    let period_seconds = u64::from(validity_days) * SECONDS_PER_DAY;
    let not_after_unix_seconds = now_unix_seconds
        .checked_add(period_seconds)
        .filter(|end| *end <= X509_TIME_MAX_UNIX_SECONDS)
        .ok_or(Error::Validity("validity period ends after year 9999"))?;
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let mut params = CertificateParams::default();
    params.not_before = epoch + Duration::from_secs(now_unix_seconds);
    params.not_after = epoch + Duration::from_secs(not_after_unix_seconds);
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    params.distinguished_name = name;
    params.serial_number = Some(serial_number(subject_key, common_name, now_unix_seconds));
    Ok(params)
}

/// A serial derived from what distinguishes one certificate from another (key, name,
/// start), so renewals differ and generation stays deterministic. 16 bytes, positive.
fn serial_number(
    subject_key: &VerifyingKey,
    common_name: &str,
    now_unix_seconds: u64,
) -> SerialNumber {
    let mut hasher = Sha256::new();
    hasher.update(subject_key.spki_der());
    hasher.update(&now_unix_seconds.to_be_bytes());
    hasher.update(common_name.as_bytes());
    let digest = hasher.finish();
    let mut serial = [0u8; 16];
    serial.copy_from_slice(&digest.as_bytes()[..16]);
    serial[0] = (serial[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&serial)
}

fn rcgen_key_pair(key: &SigningKey) -> Result<KeyPair> {
    KeyPair::try_from(key.to_pkcs8_der()).map_err(generation_error)
}

#[allow(clippy::needless_pass_by_value, reason = "used as a map_err adapter")]
fn generation_error(error: rcgen::Error) -> Error {
    Error::CertificateGeneration(error.to_string())
}

#[cfg(test)]
mod tests;
