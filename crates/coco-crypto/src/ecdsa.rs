//! ECDSA keys on P-384 (CCF's service and node keys) and P-256 (members and users).
//!
//! Two signature shapes are needed:
//! - the node signature over a Merkle root: DER ECDSA over the 32-byte root treated as a
//!   prehashed SHA-256 digest (`ccf.receipt.verify` uses `Prehashed(SHA256)`), whatever the
//!   curve;
//! - COSE ES256/ES384: raw `r‖s` over a message hashed with the curve's own hash.

use aws_lc_rs::digest::{self, Digest as LcDigest};
use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair as _, ParsedPublicKey, UnparsedPublicKey};
use coco_types::Digest;

use crate::pem::{PEM_LABEL_EC_PRIVATE_KEY, PEM_LABEL_PRIVATE_KEY, pem_decode_all, pem_encode};
use crate::{Error, Result, sha256};

/// The elliptic curves Coco signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Curve {
    /// NIST P-256 (secp256r1), paired with SHA-256.
    P256,
    /// NIST P-384 (secp384r1), paired with SHA-384: CCF's default for service and nodes.
    P384,
}

impl Curve {
    /// The COSE algorithm that pairs this curve with its own hash.
    #[must_use]
    pub const fn cose_algorithm(self) -> CoseAlgorithm {
        match self {
            Self::P256 => CoseAlgorithm::Es256,
            Self::P384 => CoseAlgorithm::Es384,
        }
    }

    /// Length of a raw `r‖s` signature on this curve.
    #[must_use]
    pub const fn raw_signature_bytes(self) -> usize {
        match self {
            Self::P256 => 64,
            Self::P384 => 96,
        }
    }

    const fn signing_asn1(self) -> &'static signature::EcdsaSigningAlgorithm {
        match self {
            Self::P256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            Self::P384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        }
    }

    const fn signing_fixed(self) -> &'static signature::EcdsaSigningAlgorithm {
        match self {
            Self::P256 => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            Self::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        }
    }

    const fn verify_prehashed_sha256(self) -> &'static signature::EcdsaVerificationAlgorithm {
        match self {
            Self::P256 => &signature::ECDSA_P256_SHA256_ASN1,
            Self::P384 => &signature::ECDSA_P384_SHA256_ASN1,
        }
    }

    const fn verify_fixed(self) -> &'static signature::EcdsaVerificationAlgorithm {
        match self {
            Self::P256 => &signature::ECDSA_P256_SHA256_FIXED,
            Self::P384 => &signature::ECDSA_P384_SHA384_FIXED,
        }
    }
}

/// COSE signature algorithms Coco produces and accepts (RFC 9053 ECDSA).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CoseAlgorithm {
    /// ECDSA P-256 with SHA-256, label −7.
    Es256,
    /// ECDSA P-384 with SHA-384, label −35.
    Es384,
}

impl CoseAlgorithm {
    /// The integer label carried in COSE header 1.
    #[must_use]
    pub const fn label(self) -> i64 {
        match self {
            Self::Es256 => -7,
            Self::Es384 => -35,
        }
    }

    /// The algorithm for a COSE header-1 label.
    ///
    /// # Errors
    /// [`Error::UnsupportedAlgorithm`] for any other label (ES512, `EdDSA`, RSA…).
    pub const fn from_label(label: i64) -> Result<Self> {
        match label {
            -7 => Ok(Self::Es256),
            -35 => Ok(Self::Es384),
            other => Err(Error::UnsupportedAlgorithm(other)),
        }
    }

    /// The curve this algorithm signs on.
    #[must_use]
    pub const fn curve(self) -> Curve {
        match self {
            Self::Es256 => Curve::P256,
            Self::Es384 => Curve::P384,
        }
    }
}

/// An ECDSA private key. Never printed; serialised only by [`SigningKey::to_pkcs8_pem`].
pub struct SigningKey {
    curve: Curve,
    /// DER-signature key pair (the node's root signature, certificates).
    asn1: EcdsaKeyPair,
    /// Raw `r‖s` key pair (COSE).
    fixed: EcdsaKeyPair,
    pkcs8: Vec<u8>,
    verifying: VerifyingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({:?}, {})", self.curve, self.verifying.spki_sha256())
    }
}

impl Clone for SigningKey {
    fn clone(&self) -> Self {
        Self::from_pkcs8_der(&self.pkcs8).expect("a key that parsed once parses again")
    }
}

impl SigningKey {
    /// A fresh P-384 key from the OS (service and node identities).
    ///
    /// # Errors
    /// [`Error::Internal`] if the OS has no entropy to give.
    pub fn generate_p384() -> Result<Self> {
        Self::generate(Curve::P384)
    }

    /// A fresh P-256 key from the OS (member and user identities).
    ///
    /// # Errors
    /// [`Error::Internal`] if the OS has no entropy to give.
    pub fn generate_p256() -> Result<Self> {
        Self::generate(Curve::P256)
    }

    /// A fresh key on `curve`.
    ///
    /// # Errors
    /// [`Error::Internal`] if the OS has no entropy to give.
    pub fn generate(curve: Curve) -> Result<Self> {
        let pair = EcdsaKeyPair::generate(curve.signing_asn1())
            .map_err(|_| Error::Internal("ECDSA key generation"))?;
        let pkcs8 = pair.to_pkcs8v1().map_err(|_| Error::Internal("PKCS#8 encoding"))?;
        Self::from_pkcs8_der(pkcs8.as_ref())
    }

    /// Parses an unencrypted PKCS#8 DER private key on P-256 or P-384.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] if it is not such a key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        for curve in [Curve::P384, Curve::P256] {
            let Ok(asn1) = EcdsaKeyPair::from_pkcs8(curve.signing_asn1(), der) else {
                continue;
            };
            return Self::from_pair(curve, &asn1);
        }
        Err(Error::InvalidKey("not a PKCS#8 P-256 or P-384 ECDSA private key"))
    }

    /// Parses a PEM private key: PKCS#8 (`PRIVATE KEY`, what [`Self::to_pkcs8_pem`]
    /// writes) or SEC1 (`EC PRIVATE KEY`, what CCF's `keygenerator.sh` writes).
    ///
    /// # Errors
    /// [`Error::Malformed`] for broken PEM, [`Error::InvalidKey`] for anything but a
    /// P-256/P-384 private key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<Self> {
        for (label, der) in pem_decode_all(pem)? {
            if label == PEM_LABEL_PRIVATE_KEY {
                return Self::from_pkcs8_der(&der);
            }
            if label == PEM_LABEL_EC_PRIVATE_KEY {
                for curve in [Curve::P384, Curve::P256] {
                    if let Ok(pair) = EcdsaKeyPair::from_private_key_der(curve.signing_asn1(), &der)
                    {
                        return Self::from_pair(curve, &pair);
                    }
                }
                return Err(Error::InvalidKey("not a SEC1 P-256 or P-384 private key"));
            }
        }
        Err(Error::Malformed { what: "private key PEM", reason: "no private key block".into() })
    }

    /// Normalises any parsed key pair through PKCS#8 so that every key we hold can be
    /// written back out and handed to rcgen.
    fn from_pair(curve: Curve, pair: &EcdsaKeyPair) -> Result<Self> {
        let pkcs8 =
            pair.to_pkcs8v1().map_err(|_| Error::Internal("PKCS#8 encoding"))?.as_ref().to_vec();
        let asn1 = EcdsaKeyPair::from_pkcs8(curve.signing_asn1(), &pkcs8)
            .map_err(|_| Error::InvalidKey("PKCS#8 round trip"))?;
        let fixed = EcdsaKeyPair::from_pkcs8(curve.signing_fixed(), &pkcs8)
            .map_err(|_| Error::InvalidKey("PKCS#8 round trip"))?;
        let spki = asn1.public_key().as_der().map_err(|_| Error::Internal("SPKI encoding"))?;
        let verifying = VerifyingKey::from_spki_der(spki.as_ref())?;
        assert_eq!(verifying.curve(), curve, "a key pair's public key is on its own curve");
        Ok(Self { curve, asn1, fixed, pkcs8, verifying })
    }

    /// The PKCS#8 DER encoding (secret).
    #[must_use]
    pub fn to_pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The PKCS#8 PEM encoding (`PRIVATE KEY`, secret).
    #[must_use]
    pub fn to_pkcs8_pem(&self) -> String {
        pem_encode(PEM_LABEL_PRIVATE_KEY, &self.pkcs8)
    }

    /// The key's curve.
    #[must_use]
    pub const fn curve(&self) -> Curve {
        self.curve
    }

    /// The COSE algorithm [`Self::sign_cose`] uses.
    #[must_use]
    pub const fn cose_alg(&self) -> CoseAlgorithm {
        self.curve.cose_algorithm()
    }

    /// The public half.
    #[must_use]
    pub const fn verifying_key(&self) -> &VerifyingKey {
        &self.verifying
    }

    /// The public key as `SubjectPublicKeyInfo` DER.
    #[must_use]
    pub fn public_key_der(&self) -> Vec<u8> {
        self.verifying.spki_der().to_vec()
    }

    /// DER ECDSA signature over `digest` taken as an already-computed SHA-256 hash: CCF's
    /// node signature over the Merkle root.
    ///
    /// aws-lc-rs has no P-384 + SHA-256 signer, so on P-384 we sign a SHA-384-sized digest
    /// of 16 zero bytes ‖ `digest`. ECDSA uses the leftmost 384 bits of the hash as the
    /// integer z, and those leading zeros leave z equal to the 256-bit digest's integer:
    /// exactly the `Prehashed(SHA256)` signature.
    ///
    /// # Panics
    /// Never: the digest length matches the algorithm and the key is valid.
    #[must_use]
    pub fn sign_prehashed_sha256(&self, digest: &Digest) -> Vec<u8> {
        let imported = match self.curve {
            Curve::P256 => LcDigest::import_less_safe(digest.as_bytes(), &digest::SHA256),
            Curve::P384 => {
                let mut padded = [0u8; 48];
                padded[16..].copy_from_slice(digest.as_bytes());
                LcDigest::import_less_safe(&padded, &digest::SHA384)
            }
        }
        .expect("the imported digest has the algorithm's output length");
        let signature = self
            .asn1
            .sign_digest(&imported)
            .expect("signing a digest of the key algorithm's hash cannot fail");
        signature.as_ref().to_vec()
    }

    /// Raw `r‖s` signature over `message` with the curve's hash (ES256 or ES384), as
    /// COSE Sign1 carries it.
    ///
    /// # Panics
    /// Never: signing with a valid key cannot fail.
    #[must_use]
    pub fn sign_cose(&self, message: &[u8]) -> Vec<u8> {
        let signature = self
            .fixed
            .sign(&SystemRandom::new(), message)
            .expect("ECDSA signing with a valid key cannot fail");
        assert_eq!(signature.as_ref().len(), self.curve.raw_signature_bytes());
        signature.as_ref().to_vec()
    }
}

/// An ECDSA public key, checked to be a valid point on P-256 or P-384.
#[derive(Clone)]
pub struct VerifyingKey {
    curve: Curve,
    spki: Vec<u8>,
    prehashed: ParsedPublicKey,
    fixed: ParsedPublicKey,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({:?}, {})", self.curve, self.spki_sha256())
    }
}

impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki == other.spki
    }
}

impl Eq for VerifyingKey {}

impl VerifyingKey {
    /// Parses a `SubjectPublicKeyInfo` DER holding a P-256 or P-384 key.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] if it is anything else, including a bare SEC1 point or a
    /// non-canonical encoding.
    pub fn from_spki_der(spki: &[u8]) -> Result<Self> {
        for curve in [Curve::P384, Curve::P256] {
            let Ok(fixed) = UnparsedPublicKey::new(curve.verify_fixed(), spki).parse() else {
                continue;
            };
            let canonical = fixed.as_der().map_err(|_| Error::Internal("SPKI encoding"))?;
            if canonical.as_ref() != spki {
                return Err(Error::InvalidKey("not a canonical SubjectPublicKeyInfo"));
            }
            let prehashed = UnparsedPublicKey::new(curve.verify_prehashed_sha256(), spki)
                .parse()
                .map_err(|_| Error::InvalidKey("EC public key"))?;
            return Ok(Self { curve, spki: spki.to_vec(), prehashed, fixed });
        }
        Err(Error::InvalidKey("not a P-256 or P-384 SubjectPublicKeyInfo"))
    }

    /// The key's curve.
    #[must_use]
    pub const fn curve(&self) -> Curve {
        self.curve
    }

    /// The `SubjectPublicKeyInfo` DER.
    #[must_use]
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// SHA-256 of the SPKI DER: CCF's key id for the service key (COSE `kid` as hex).
    #[must_use]
    pub fn spki_sha256(&self) -> Digest {
        sha256(&self.spki)
    }

    /// Checks a DER signature over `digest` taken as a prehashed SHA-256 digest.
    ///
    /// # Errors
    /// [`Error::BadSignature`] if it does not verify (including malformed DER).
    ///
    /// # Panics
    /// Never: a [`Digest`] is always SHA-256's length.
    pub fn verify_prehashed_sha256(&self, digest: &Digest, der_signature: &[u8]) -> Result<()> {
        let imported = LcDigest::import_less_safe(digest.as_bytes(), &digest::SHA256)
            .expect("a Digest is 32 bytes, SHA-256's output length");
        self.prehashed.verify_digest_sig(&imported, der_signature).map_err(|_| Error::BadSignature)
    }

    /// Checks a raw `r‖s` signature over `message` with the curve's hash (ES256/ES384).
    ///
    /// # Errors
    /// [`Error::BadSignature`] if it does not verify or has the wrong length.
    pub fn verify_cose(&self, message: &[u8], raw_signature: &[u8]) -> Result<()> {
        if raw_signature.len() != self.curve.raw_signature_bytes() {
            return Err(Error::BadSignature);
        }
        self.fixed.verify_sig(message, raw_signature).map_err(|_| Error::BadSignature)
    }
}

#[cfg(test)]
mod tests;
