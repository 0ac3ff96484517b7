//! Sealing a secret to a node's key, so that only that node can open it: the ledger
//! carries each new ledger secret sealed to every node of the service (backups learn of a
//! rekey from the ledger itself). ECDH between a fresh ephemeral P-384 key and the node's
//! key, HKDF-SHA256 over the shared secret (salted with the ephemeral key, bound to the
//! recipient's key), then AES-256-GCM ([`crate::wrap_key`]).
//!
//! The node key also signs (ECDSA); using one P-384 key for both is sound here because
//! the two uses never share inputs, and it keeps a node to one key, as its certificate
//! names it.

use aws_lc_rs::agreement::{self, ECDH_P384, PrivateKey, UnparsedPublicKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, KeyType, Salt};

use crate::aead::Aes256GcmKey;
use crate::ecdsa::{Curve, SigningKey, VerifyingKey};
use crate::error::{Error, Result};
use crate::wrap::{SECRET_KEY_BYTES, unwrap_key, wrap_key};

/// Bytes of an uncompressed P-384 point, which starts a sealed secret.
const EPHEMERAL_BYTES: usize = 97;
/// Domain separation for the derived key.
const INFO: &[u8] = b"coco seal to node key v1";

/// Seals `secret` to the holder of `recipient` (a P-384 key), authenticating `aad`.
///
/// # Errors
/// [`Error::InvalidKey`] for a key that is not P-384; [`Error::Internal`] if the OS has no
/// randomness.
pub fn seal_to_key(
    recipient: &VerifyingKey,
    secret: &[u8; SECRET_KEY_BYTES],
    aad: &[u8],
) -> Result<Vec<u8>> {
    if recipient.curve() != Curve::P384 {
        return Err(Error::InvalidKey("secrets are sealed to P-384 keys"));
    }
    let ephemeral = PrivateKey::generate(&ECDH_P384).map_err(|_| Error::Internal("ECDH key"))?;
    let public = ephemeral.compute_public_key().map_err(|_| Error::Internal("ECDH key"))?;
    let public = public.as_ref().to_vec();
    let peer = UnparsedPublicKey::new(&ECDH_P384, recipient.spki_der());
    let wrapping = agreement::agree(&ephemeral, peer, Error::InvalidKey("recipient key"), |z| {
        Ok(derive(z, &public, recipient.spki_der()))
    })??;
    let mut sealed = public;
    sealed.extend(wrap_key(&wrapping, secret, aad)?);
    Ok(sealed)
}

/// Opens what [`seal_to_key`] sealed to `key`'s public half.
///
/// # Errors
/// [`Error::Malformed`] for a truncated input; [`Error::Decrypt`] if it was sealed to
/// another key, with another `aad`, or altered.
pub fn open_with_key(
    key: &SigningKey,
    sealed: &[u8],
    aad: &[u8],
) -> Result<[u8; SECRET_KEY_BYTES]> {
    if sealed.len() < EPHEMERAL_BYTES {
        return Err(Error::Malformed { what: "sealed secret", reason: "too short".to_owned() });
    }
    let (public, wrapped) = sealed.split_at(EPHEMERAL_BYTES);
    let private = PrivateKey::from_private_key_der(&ECDH_P384, key.to_pkcs8_der())
        .map_err(|_| Error::InvalidKey("secrets are opened with P-384 keys"))?;
    let recipient = key.public_key_der();
    let peer = UnparsedPublicKey::new(&ECDH_P384, public);
    let wrapping =
        agreement::agree(&private, peer, Error::Decrypt, |z| Ok(derive(z, public, &recipient)))??;
    unwrap_key(&wrapping, wrapped, aad)
}

/// The AES key both sides derive from the ECDH output.
fn derive(shared: &[u8], ephemeral: &[u8], recipient_spki: &[u8]) -> Result<Aes256GcmKey> {
    struct Len;
    impl KeyType for Len {
        fn len(&self) -> usize {
            SECRET_KEY_BYTES
        }
    }
    let info = [INFO, recipient_spki];
    let prk = Salt::new(HKDF_SHA256, ephemeral).extract(shared);
    let okm = prk.expand(&info, Len).map_err(|_| Error::Internal("HKDF"))?;
    let mut key = [0u8; SECRET_KEY_BYTES];
    okm.fill(&mut key).map_err(|_| Error::Internal("HKDF"))?;
    Aes256GcmKey::new(&key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_recipient_opens_with_the_same_aad() {
        let node = SigningKey::generate_p384().unwrap();
        let other = SigningKey::generate_p384().unwrap();
        let secret = [7u8; SECRET_KEY_BYTES];
        let sealed = seal_to_key(node.verifying_key(), &secret, b"aad").unwrap();
        assert_eq!(open_with_key(&node, &sealed, b"aad").unwrap(), secret);
        assert!(open_with_key(&other, &sealed, b"aad").is_err(), "another key");
        assert!(open_with_key(&node, &sealed, b"other").is_err(), "another aad");
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(open_with_key(&node, &flipped, b"aad").is_err(), "altered");
        assert!(open_with_key(&node, &sealed[..10], b"aad").is_err(), "truncated");
        let again = seal_to_key(node.verifying_key(), &secret, b"aad").unwrap();
        assert_ne!(sealed, again, "a fresh ephemeral key each time");
    }
}
