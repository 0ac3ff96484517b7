//! SHA-256 and HMAC-SHA256.

use aws_lc_rs::{digest, hmac};
use coco_types::Digest;

/// SHA-256 of `data`.
///
/// # Panics
/// Never: SHA-256 output is 32 bytes.
#[must_use]
pub fn sha256(data: &[u8]) -> Digest {
    let out = digest::digest(&digest::SHA256, data);
    Digest::from_slice(out.as_ref()).expect("SHA-256 output is 32 bytes")
}

/// HMAC-SHA256 of `data` under `key`; CCF derives commit evidence with it.
///
/// # Panics
/// Never: HMAC-SHA256 output is 32 bytes.
#[must_use]
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Digest {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&key, data);
    Digest::from_slice(tag.as_ref()).expect("HMAC-SHA256 output is 32 bytes")
}

/// An HMAC-SHA256 key set up once: the key schedule (two compressions) is paid at
/// construction, not per message; the ledger derives a commit nonce per transaction.
#[derive(Clone)]
pub struct HmacSha256Key(hmac::Key);

impl HmacSha256Key {
    /// Sets up the key.
    #[must_use]
    pub fn new(key: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, key))
    }

    /// HMAC-SHA256 of `data`.
    ///
    /// # Panics
    /// Never: the tag of HMAC-SHA256 is 32 bytes.
    #[must_use]
    pub fn sign(&self, data: &[u8]) -> Digest {
        let tag = hmac::sign(&self.0, data);
        Digest::from_slice(tag.as_ref()).expect("HMAC-SHA256 output is 32 bytes")
    }
}

impl std::fmt::Debug for HmacSha256Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacSha256Key(..)")
    }
}

/// Incremental SHA-256, for digests over several pieces without concatenating them.
#[derive(Clone)]
pub struct Sha256(digest::Context);

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha256 {
    /// A fresh hasher.
    #[must_use]
    pub fn new() -> Self {
        Self(digest::Context::new(&digest::SHA256))
    }

    /// Feeds more bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// The digest of everything fed so far.
    ///
    /// # Panics
    /// Never: SHA-256 output is 32 bytes.
    #[must_use]
    pub fn finish(self) -> Digest {
        let out = self.0.finish();
        Digest::from_slice(out.as_ref()).expect("SHA-256 output is 32 bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        assert_eq!(
            sha256(b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut incremental = Sha256::new();
        incremental.update(b"a");
        incremental.update(b"bc");
        assert_eq!(incremental.finish(), sha256(b"abc"));
        // RFC 4231 test case 2.
        assert_eq!(
            hmac_sha256(b"Jefe", b"what do ya want for nothing?").to_hex(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let key = HmacSha256Key::new(b"Jefe");
        assert_eq!(
            key.sign(b"what do ya want for nothing?"),
            hmac_sha256(b"Jefe", b"what do ya want for nothing?")
        );
    }
}
