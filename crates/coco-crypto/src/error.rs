//! The crate's error type.

/// What went wrong in a cryptographic operation. Messages never carry key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// AES-GCM authentication failed: wrong key, IV, AAD or tampered ciphertext.
    #[error("authenticated decryption failed")]
    Decrypt,
    /// A key had the wrong length or encoding.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// A signature did not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// A PEM or DER document could not be parsed.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being parsed (certificate, private key, COSE Sign1…).
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// A COSE algorithm label Coco does not accept (only ES256 and ES384 are).
    #[error("unsupported COSE algorithm {0}")]
    UnsupportedAlgorithm(i64),
    /// A COSE algorithm that does not match the verifying key's curve.
    #[error("COSE algorithm {alg} does not match the key's curve")]
    AlgorithmMismatch {
        /// The algorithm label in the message.
        alg: i64,
    },
    /// A COSE `kid` that names a different key than the one verifying.
    #[error("COSE kid {found:?} does not match the expected {expected:?}")]
    KidMismatch {
        /// The kid the verifier derived from its key or certificate.
        expected: String,
        /// The kid in the message (lossy UTF-8, truncated).
        found: String,
    },
    /// A certificate was used outside its validity period, or was asked for one that
    /// cannot be encoded.
    #[error("certificate validity: {0}")]
    Validity(&'static str),
    /// Certificate generation failed in rcgen.
    #[error("certificate generation failed: {0}")]
    CertificateGeneration(String),
    /// A plaintext longer than RSA-OAEP can carry under this key.
    #[error("plaintext of {length} bytes exceeds the {max} RSA-OAEP allows with this key")]
    PlaintextTooLong {
        /// The plaintext's length.
        length: usize,
        /// The most this key takes.
        max: usize,
    },
    /// Shamir secret sharing refused its input.
    #[error(transparent)]
    Shamir(#[from] crate::ShamirError),
    /// The underlying library failed for a reason it does not disclose.
    #[error("cryptographic operation failed: {0}")]
    Internal(&'static str),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
