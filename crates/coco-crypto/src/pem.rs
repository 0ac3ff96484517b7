//! PEM armour for DER documents (RFC 7468): keys and certificates travel as PEM in CCF's
//! JSON (service info, node certs, receipts) and on disk (member identities).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use x509_parser::pem::Pem;

use crate::{Error, Result};

/// PEM label of an X.509 certificate.
pub const PEM_LABEL_CERTIFICATE: &str = "CERTIFICATE";
/// PEM label of a PKCS#8 private key.
pub const PEM_LABEL_PRIVATE_KEY: &str = "PRIVATE KEY";
/// PEM label of a SEC1 EC private key (what `openssl ecparam -genkey` writes).
pub const PEM_LABEL_EC_PRIVATE_KEY: &str = "EC PRIVATE KEY";
/// PEM label of a `SubjectPublicKeyInfo`.
pub const PEM_LABEL_PUBLIC_KEY: &str = "PUBLIC KEY";

/// Armours `der` as PEM with `label`, 64 base64 characters per line, LF line endings.
///
/// # Panics
/// Never: base64 output is ASCII.
#[must_use]
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = String::with_capacity(body.len() + body.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 output is ASCII"));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Every PEM block in `text`, in order, as (label, DER).
///
/// # Errors
/// [`Error::Malformed`] if a block is present but its base64 or framing is broken.
pub fn pem_decode_all(text: &str) -> Result<Vec<(String, Vec<u8>)>> {
    Pem::iter_from_buffer(text.as_bytes())
        .map(|block| {
            block
                .map(|pem| (pem.label, pem.contents))
                .map_err(|error| Error::Malformed { what: "PEM", reason: error.to_string() })
        })
        .collect()
}

/// The DER of the first PEM block labelled `label` in `text`.
///
/// # Errors
/// [`Error::Malformed`] if no such block exists or a block is broken.
pub fn pem_decode(label: &'static str, text: &str) -> Result<Vec<u8>> {
    pem_decode_all(text)?
        .into_iter()
        .find_map(|(found, der)| (found == label).then_some(der))
        .ok_or(Error::Malformed { what: label, reason: "no PEM block with this label".into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let der: Vec<u8> = (0..=255u8).collect();
        let pem = pem_encode(PEM_LABEL_CERTIFICATE, &der);
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(pem.lines().all(|line| line.len() <= 64 || line.starts_with("-----")));
        assert_eq!(pem_decode(PEM_LABEL_CERTIFICATE, &pem).unwrap(), der);
        assert!(pem_decode(PEM_LABEL_PRIVATE_KEY, &pem).is_err());
        assert!(pem_decode(PEM_LABEL_CERTIFICATE, "garbage").is_err());
        let broken = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(pem_decode(PEM_LABEL_CERTIFICATE, broken).is_err());
        let two = format!("{pem}{}", pem_encode(PEM_LABEL_PUBLIC_KEY, b"xy"));
        assert_eq!(pem_decode_all(&two).unwrap().len(), 2);
        assert_eq!(pem_decode(PEM_LABEL_PUBLIC_KEY, &two).unwrap(), b"xy");
    }
}
