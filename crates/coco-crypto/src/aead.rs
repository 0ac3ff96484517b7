//! AES-256-GCM with caller-chosen IVs, as CCF's ledger requires.
//!
//! The ledger derives each IV from (seqno, view), so an IV is never reused under one
//! key as long as a (seqno, view) pair is written once: that is the ledger's invariant,
//! not this module's, which is why the API takes the IV explicitly.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

use crate::{Error, Result};

/// Bytes in an AES-GCM IV.
pub const AES_GCM_IV_BYTES: usize = 12;
/// Bytes in an AES-GCM authentication tag.
pub const AES_GCM_TAG_BYTES: usize = 16;

/// An AES-256-GCM key (the ledger secret, or a key wrapping it).
pub struct Aes256GcmKey {
    key: LessSafeKey,
    raw: [u8; 32],
}

impl std::fmt::Debug for Aes256GcmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Aes256GcmKey(..)")
    }
}

impl Clone for Aes256GcmKey {
    fn clone(&self) -> Self {
        Self::new(&self.raw).expect("a key that was valid once stays valid")
    }
}

impl Aes256GcmKey {
    /// Wraps 32 raw key bytes.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] if `raw` is not 32 bytes.
    pub fn new(raw: &[u8]) -> Result<Self> {
        let raw: [u8; 32] = raw.try_into().map_err(|_| Error::InvalidKey("AES-256 key length"))?;
        let unbound =
            UnboundKey::new(&AES_256_GCM, &raw).map_err(|_| Error::InvalidKey("AES-256 key"))?;
        Ok(Self { key: LessSafeKey::new(unbound), raw })
    }

    /// A fresh random key from the OS.
    ///
    /// # Errors
    /// [`Error::Internal`] if the OS has no entropy to give.
    pub fn generate() -> Result<Self> {
        let mut raw = [0u8; 32];
        aws_lc_rs::rand::fill(&mut raw).map_err(|_| Error::Internal("random key"))?;
        Self::new(&raw)
    }

    /// The raw key bytes, for sealing to disk or HMAC derivations.
    #[must_use]
    pub fn raw(&self) -> &[u8; 32] {
        &self.raw
    }

    /// Encrypts `buffer` in place and returns the tag.
    ///
    /// # Errors
    /// [`Error::Internal`] if the buffer exceeds GCM's length limit.
    pub fn seal_in_place(
        &self,
        iv: [u8; AES_GCM_IV_BYTES],
        aad: &[u8],
        buffer: &mut [u8],
    ) -> Result<[u8; AES_GCM_TAG_BYTES]> {
        let nonce = Nonce::assume_unique_for_key(iv);
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(aad), buffer)
            .map_err(|_| Error::Internal("AES-GCM seal"))?;
        let mut out = [0u8; AES_GCM_TAG_BYTES];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Decrypts `buffer` in place, checking `tag` over it and `aad`.
    ///
    /// # Errors
    /// [`Error::Decrypt`] if authentication fails; `buffer` is then unspecified.
    pub fn open_in_place(
        &self,
        iv: [u8; AES_GCM_IV_BYTES],
        aad: &[u8],
        buffer: &mut [u8],
        tag: &[u8; AES_GCM_TAG_BYTES],
    ) -> Result<()> {
        let nonce = Nonce::assume_unique_for_key(iv);
        self.key
            .open_in_place_separate_tag(nonce, Aad::from(aad), tag, buffer)
            .map_err(|_| Error::Decrypt)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let key = Aes256GcmKey::new(&[7u8; 32]).unwrap();
        let iv = [1u8; AES_GCM_IV_BYTES];
        let mut buffer = b"private".to_vec();
        let tag = key.seal_in_place(iv, b"public", &mut buffer).unwrap();
        assert_ne!(buffer, b"private");
        let mut copy = buffer.clone();
        key.open_in_place(iv, b"public", &mut copy, &tag).unwrap();
        assert_eq!(copy, b"private");
        let mut copy = buffer.clone();
        assert_eq!(key.open_in_place(iv, b"publiC", &mut copy, &tag), Err(Error::Decrypt));
        assert!(Aes256GcmKey::new(&[0u8; 31]).is_err());
    }
}
