//! Wrapping one 32-byte key under another with AES-256-GCM.
//!
//! Used (a) to wrap the ledger secret under the recovery *wrapping key* that
//! [`crate::split_secret`] splits among members, and (b) on rekey, to chain each previous
//! ledger secret under the new one (CCF's `historical_encrypted_ledger_secret`), so old
//! entries stay readable from the newest secret alone.
//!
//! Byte layout of a wrapped key ([`WRAPPED_KEY_BYTES`] = 60 bytes):
//! `IV (12 bytes, random) ‖ ciphertext (32 bytes) ‖ GCM tag (16 bytes)`.
//!
//! Unlike the ledger's deterministic IVs, these are random: a wrapping key wraps a handful of
//! keys in its life (one per rekey or membership change), so a 96-bit random IV never repeats
//! in practice, and no counter must be persisted. Callers bind the purpose in `aad` (e.g. the
//! version of the secret being wrapped) so a wrapped key cannot be replayed in another slot.

use crate::{AES_GCM_IV_BYTES, AES_GCM_TAG_BYTES, Aes256GcmKey, Error, Result};

/// Bytes in a key that is wrapped (the ledger secret, a recovery wrapping key).
pub const SECRET_KEY_BYTES: usize = 32;
/// Bytes in a wrapped key: IV ‖ ciphertext ‖ tag.
pub const WRAPPED_KEY_BYTES: usize = AES_GCM_IV_BYTES + SECRET_KEY_BYTES + AES_GCM_TAG_BYTES;

/// Encrypts `key_to_wrap` under `wrapping`, authenticating `aad`, with a fresh random IV.
///
/// # Errors
/// [`Error::Internal`] if the OS has no randomness or the cipher fails.
pub fn wrap_key(
    wrapping: &Aes256GcmKey,
    key_to_wrap: &[u8; SECRET_KEY_BYTES],
    aad: &[u8],
) -> Result<Vec<u8>> {
    let mut iv = [0u8; AES_GCM_IV_BYTES];
    aws_lc_rs::rand::fill(&mut iv).map_err(|_| Error::Internal("random IV"))?;
    let mut buffer = *key_to_wrap;
    let tag = wrapping.seal_in_place(iv, aad, &mut buffer)?;
    let mut out = Vec::with_capacity(WRAPPED_KEY_BYTES);
    out.extend_from_slice(&iv);
    out.extend_from_slice(&buffer);
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Decrypts [`wrap_key`] output, checking it was wrapped under `wrapping` with `aad`.
///
/// # Errors
/// [`Error::Malformed`] if `wrapped` is not [`WRAPPED_KEY_BYTES`] long; [`Error::Decrypt`]
/// if the key, the AAD or any byte is wrong (tampering, or a wrapping key rebuilt from
/// shares of another split).
pub fn unwrap_key(
    wrapping: &Aes256GcmKey,
    wrapped: &[u8],
    aad: &[u8],
) -> Result<[u8; SECRET_KEY_BYTES]> {
    let malformed = || Error::Malformed {
        what: "wrapped key",
        reason: format!("{} bytes, expected {WRAPPED_KEY_BYTES}", wrapped.len()),
    };
    let (iv, rest) = wrapped.split_first_chunk::<AES_GCM_IV_BYTES>().ok_or_else(malformed)?;
    let (ciphertext, tag) = rest.split_last_chunk::<AES_GCM_TAG_BYTES>().ok_or_else(malformed)?;
    let mut buffer: [u8; SECRET_KEY_BYTES] = ciphertext.try_into().map_err(|_| malformed())?;
    wrapping.open_in_place(*iv, aad, &mut buffer, tag)?;
    Ok(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_unwrap_round_trip_with_fresh_ivs() {
        let wrapping = Aes256GcmKey::generate().unwrap();
        let secret = [0x42u8; SECRET_KEY_BYTES];
        let wrapped = wrap_key(&wrapping, &secret, b"ledger secret 7").unwrap();
        assert_eq!(wrapped.len(), WRAPPED_KEY_BYTES);
        assert_ne!(&wrapped[AES_GCM_IV_BYTES..][..SECRET_KEY_BYTES], &secret);
        assert_eq!(unwrap_key(&wrapping, &wrapped, b"ledger secret 7").unwrap(), secret);
        let again = wrap_key(&wrapping, &secret, b"ledger secret 7").unwrap();
        assert_ne!(again[..AES_GCM_IV_BYTES], wrapped[..AES_GCM_IV_BYTES]);
        assert_eq!(unwrap_key(&wrapping, &again, b"ledger secret 7").unwrap(), secret);
    }

    #[test]
    fn layout_is_iv_ciphertext_tag() {
        let wrapping = Aes256GcmKey::new(&[3u8; 32]).unwrap();
        let secret = [9u8; SECRET_KEY_BYTES];
        let wrapped = wrap_key(&wrapping, &secret, b"aad").unwrap();
        let iv: [u8; AES_GCM_IV_BYTES] = wrapped[..AES_GCM_IV_BYTES].try_into().unwrap();
        let mut buffer = secret;
        let tag = wrapping.seal_in_place(iv, b"aad", &mut buffer).unwrap();
        assert_eq!(&wrapped[AES_GCM_IV_BYTES..][..SECRET_KEY_BYTES], &buffer);
        assert_eq!(&wrapped[AES_GCM_IV_BYTES + SECRET_KEY_BYTES..], &tag);
    }

    #[test]
    fn tampering_wrong_key_and_wrong_aad_are_refused() {
        let wrapping = Aes256GcmKey::generate().unwrap();
        let wrapped = wrap_key(&wrapping, &[1u8; SECRET_KEY_BYTES], b"a").unwrap();
        for index in 0..wrapped.len() {
            let mut bad = wrapped.clone();
            bad[index] ^= 0x01;
            assert_eq!(unwrap_key(&wrapping, &bad, b"a"), Err(Error::Decrypt), "byte {index}");
        }
        assert_eq!(unwrap_key(&wrapping, &wrapped, b"b"), Err(Error::Decrypt));
        let other = Aes256GcmKey::generate().unwrap();
        assert_eq!(unwrap_key(&other, &wrapped, b"a"), Err(Error::Decrypt));
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        let wrapping = Aes256GcmKey::generate().unwrap();
        let wrapped = wrap_key(&wrapping, &[1u8; SECRET_KEY_BYTES], b"").unwrap();
        for cut in 0..wrapped.len() {
            let result = unwrap_key(&wrapping, &wrapped[..cut], b"");
            assert!(matches!(result, Err(Error::Malformed { what: "wrapped key", .. })), "{cut}");
        }
        let mut long = wrapped;
        long.push(0);
        assert!(matches!(unwrap_key(&wrapping, &long, b""), Err(Error::Malformed { .. })));
    }
}
