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
    /// The underlying library failed for a reason it does not disclose.
    #[error("cryptographic operation failed: {0}")]
    Internal(&'static str),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
