//! A SHA-256 digest.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 32-byte SHA-256 digest. Displays and serialises as 64 lowercase hex characters,
/// which is how CCF's JSON (receipts, signatures, ids) carries digests.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The all-zero digest: CCF's Merkle leaf 0 and the "no claims" claims digest.
    pub const ZERO: Self = Self([0; 32]);

    /// The raw bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, 64 characters.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Builds a digest from a slice that must be exactly 32 bytes long.
    ///
    /// # Errors
    /// [`DigestParseError::Length`] if the slice is not 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DigestParseError> {
        let array: [u8; 32] =
            bytes.try_into().map_err(|_| DigestParseError::Length(bytes.len()))?;
        Ok(Self(array))
    }
}

/// Why a digest could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestParseError {
    /// Not hexadecimal.
    #[error("digest is not hex")]
    NotHex,
    /// Wrong length in bytes.
    #[error("digest has {0} bytes, expected 32")]
    Length(usize),
}

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = hex::decode(s).map_err(|_| DigestParseError::NotHex)?;
        Self::from_slice(&bytes)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let digest = Digest([0xab; 32]);
        let parsed: Digest = digest.to_hex().parse().unwrap();
        assert_eq!(parsed, digest);
        assert_eq!("00".parse::<Digest>(), Err(DigestParseError::Length(1)));
        assert_eq!("zz".parse::<Digest>(), Err(DigestParseError::NotHex));
    }
}
