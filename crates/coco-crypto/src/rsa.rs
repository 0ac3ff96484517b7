//! RSA-OAEP-SHA256 for members' encryption keys.
//!
//! CCF encrypts each member's recovery share to that member's RSA public key with OAEP,
//! SHA-256 as both the OAEP and the MGF1 hash and no label; the member decrypts it with
//! `openssl pkeyutl -decrypt -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256`
//! (`submit_recovery_share.sh`). Keys travel as PEM: PKCS#8 `PRIVATE KEY`, SPKI `PUBLIC KEY`,
//! what `openssl genrsa` and `openssl rsa -pubout` write.

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rsa::{
    KeyPair, KeySize, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
    PrivateDecryptingKey, PublicEncryptingKey,
};

use crate::{
    Error, PEM_LABEL_PRIVATE_KEY, PEM_LABEL_PUBLIC_KEY, Result, pem_decode, pem_decode_all,
    pem_encode,
};

/// PEM label of a PKCS#1 RSA private key (`openssl genrsa -traditional`).
pub const PEM_LABEL_RSA_PRIVATE_KEY: &str = "RSA PRIVATE KEY";

/// An RSA private key that decrypts shares encrypted to its member.
pub struct RsaPrivateKey {
    key: OaepPrivateDecryptingKey,
    pkcs8: Vec<u8>,
    public: RsaPublicKey,
}

impl std::fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RsaPrivateKey({} bits, ..)", self.bits())
    }
}

impl RsaPrivateKey {
    /// A fresh key of `bits` (2048, 3072 or 4096) from the OS's randomness.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] for another size; [`Error::Internal`] if generation fails.
    pub fn generate(bits: u32) -> Result<Self> {
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            _ => return Err(Error::InvalidKey("RSA key size must be 2048, 3072 or 4096 bits")),
        };
        let key = PrivateDecryptingKey::generate(size)
            .map_err(|_| Error::Internal("RSA key generation"))?;
        Self::from_key(key)
    }

    /// Parses a PKCS#8 DER private key (2048 to 8192 bits).
    ///
    /// # Errors
    /// [`Error::Malformed`] if `der` is not a PKCS#8 RSA private key of a supported size.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        let key = PrivateDecryptingKey::from_pkcs8(der).map_err(|error| Error::Malformed {
            what: "RSA private key",
            reason: error.to_string(),
        })?;
        Self::from_key(key)
    }

    /// Parses the first `PRIVATE KEY` (PKCS#8) or, failing that, `RSA PRIVATE KEY` (PKCS#1,
    /// what OpenSSL 1.1's `genrsa` writes) PEM block in `pem`.
    ///
    /// # Errors
    /// [`Error::Malformed`] if there is no such block or it is not an RSA key.
    pub fn from_pem(pem: &str) -> Result<Self> {
        let blocks = pem_decode_all(pem)?;
        if let Some((_, der)) = blocks.iter().find(|(label, _)| label == PEM_LABEL_PRIVATE_KEY) {
            return Self::from_pkcs8_der(der);
        }
        let Some((_, der)) = blocks.iter().find(|(label, _)| label == PEM_LABEL_RSA_PRIVATE_KEY)
        else {
            return Err(Error::Malformed {
                what: "RSA private key",
                reason: "no PRIVATE KEY or RSA PRIVATE KEY PEM block".into(),
            });
        };
        let pair = KeyPair::from_der(der).map_err(|error| Error::Malformed {
            what: "RSA private key",
            reason: error.to_string(),
        })?;
        let pkcs8 = pair.as_der().map_err(|_| Error::Internal("PKCS#8 encoding"))?;
        Self::from_pkcs8_der(pkcs8.as_ref())
    }

    fn from_key(key: PrivateDecryptingKey) -> Result<Self> {
        let pkcs8 = key.as_der().map_err(|_| Error::Internal("PKCS#8 encoding"))?.as_ref().to_vec();
        let public = RsaPublicKey::from_key(key.public_key())?;
        let key =
            OaepPrivateDecryptingKey::new(key).map_err(|_| Error::Internal("RSA-OAEP key"))?;
        Ok(Self { key, pkcs8, public })
    }

    /// The key as PKCS#8 DER.
    #[must_use]
    pub fn to_pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The key as a PKCS#8 `PRIVATE KEY` PEM, for the member's key file.
    #[must_use]
    pub fn to_pem(&self) -> String {
        pem_encode(PEM_LABEL_PRIVATE_KEY, &self.pkcs8)
    }

    /// The matching public key.
    #[must_use]
    pub fn public_key(&self) -> &RsaPublicKey {
        &self.public
    }

    /// The matching public key as an SPKI `PUBLIC KEY` PEM (the member's encryption key).
    #[must_use]
    pub fn public_key_pem(&self) -> String {
        self.public.to_pem()
    }

    /// The modulus size in bits.
    #[must_use]
    pub fn bits(&self) -> u32 {
        self.public.bits()
    }

    /// Decrypts an RSA-OAEP (SHA-256, MGF1-SHA-256, no label) ciphertext.
    ///
    /// # Errors
    /// [`Error::Decrypt`] if the ciphertext has the wrong length, was encrypted to another
    /// key, with other parameters, or was altered.
    pub fn decrypt_oaep_sha256(&self, ciphertext: &[u8]) -> Result<Vec<u8>> {
        let mut plaintext = vec![0u8; self.key.min_output_size()];
        let length = self
            .key
            .decrypt(&OAEP_SHA256_MGF1SHA256, ciphertext, &mut plaintext, None)
            .map_err(|_| Error::Decrypt)?
            .len();
        plaintext.truncate(length);
        Ok(plaintext)
    }
}

/// A member's RSA public encryption key: shares are encrypted to it.
#[derive(Clone)]
pub struct RsaPublicKey {
    key: PublicEncryptingKey,
    spki: Vec<u8>,
}

impl std::fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RsaPublicKey({} bits)", self.bits())
    }
}

impl PartialEq for RsaPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki == other.spki
    }
}

impl Eq for RsaPublicKey {}

impl RsaPublicKey {
    /// Parses an X.509 `SubjectPublicKeyInfo` DER RSA key (2048 to 8192 bits).
    ///
    /// # Errors
    /// [`Error::Malformed`] if `der` is not an SPKI RSA public key of a supported size.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let key = PublicEncryptingKey::from_der(der).map_err(|error| Error::Malformed {
            what: "RSA public key",
            reason: error.to_string(),
        })?;
        Self::from_key(key)
    }

    /// Parses the first `PUBLIC KEY` (SPKI) PEM block in `pem`.
    ///
    /// # Errors
    /// [`Error::Malformed`] if there is no such block or it is not an RSA key.
    pub fn from_pem(pem: &str) -> Result<Self> {
        Self::from_der(&pem_decode(PEM_LABEL_PUBLIC_KEY, pem)?)
    }

    fn from_key(key: PublicEncryptingKey) -> Result<Self> {
        let spki = key.as_der().map_err(|_| Error::Internal("SPKI encoding"))?.as_ref().to_vec();
        Ok(Self { key, spki })
    }

    /// The key as SPKI DER.
    #[must_use]
    pub fn to_der(&self) -> &[u8] {
        &self.spki
    }

    /// The key as an SPKI `PUBLIC KEY` PEM.
    #[must_use]
    pub fn to_pem(&self) -> String {
        pem_encode(PEM_LABEL_PUBLIC_KEY, &self.spki)
    }

    /// The modulus size in bits.
    ///
    /// # Panics
    /// Never: aws-lc accepts RSA keys of at most 8192 bits.
    #[must_use]
    pub fn bits(&self) -> u32 {
        u32::try_from(self.key.key_size_bits()).expect("RSA keys are at most 8192 bits")
    }

    /// The longest plaintext [`RsaPublicKey::encrypt_oaep_sha256`] accepts: modulus bytes
    /// − 66 (190 bytes for RSA-2048).
    #[must_use]
    pub fn max_plaintext_len(&self) -> usize {
        // OAEP overhead: two SHA-256 digests and two bytes.
        self.key.key_size_bytes().saturating_sub(2 * 32 + 2)
    }

    /// Encrypts `plaintext` with RSA-OAEP (SHA-256, MGF1-SHA-256, no label), randomised.
    ///
    /// # Errors
    /// [`Error::PlaintextTooLong`] if `plaintext` is longer than
    /// [`RsaPublicKey::max_plaintext_len`]; [`Error::Internal`] if encryption fails.
    pub fn encrypt_oaep_sha256(&self, plaintext: &[u8]) -> Result<Vec<u8>> {
        let max = self.max_plaintext_len();
        if plaintext.len() > max {
            return Err(Error::PlaintextTooLong { length: plaintext.len(), max });
        }
        let key = OaepPublicEncryptingKey::new(self.key.clone())
            .map_err(|_| Error::Internal("RSA-OAEP key"))?;
        let mut ciphertext = vec![0u8; key.ciphertext_size()];
        let length = key
            .encrypt(&OAEP_SHA256_MGF1SHA256, plaintext, &mut ciphertext, None)
            .map_err(|_| Error::Internal("RSA-OAEP encryption"))?
            .len();
        ciphertext.truncate(length);
        Ok(ciphertext)
    }
}

#[cfg(test)]
mod tests;
