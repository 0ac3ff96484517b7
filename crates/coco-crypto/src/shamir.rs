//! Shamir secret sharing of a 32-byte key over GF(2^8), one polynomial per byte.
//!
//! Disaster recovery splits the ledger secret's *wrapping key* M-of-N among recovery members
//! (CCF's `recovery_threshold`, 1–254); any M shares rebuild it, M−1 reveal nothing.
//!
//! Why our own ~100 lines rather than `vsss-rs` (which DESIGN.md named): vsss-rs 6 refuses
//! threshold 1 (CCF allows `recovery_threshold = 1`), multiplies GF(256) through log/exp tables
//! indexed by secret bytes (a cache-timing channel), and wants a `rand_core` 0.10 RNG, i.e. an
//! adapter plus ~8 more crates. Here multiplication is branch-free and table-free, randomness
//! comes from `aws_lc_rs::rand` like every other key in this crate, and the whole scheme is
//! exhaustively testable. Field: GF(2^8) with the AES polynomial x^8 + x^4 + x^3 + x + 1.
//!
//! Shares are not byte-compatible with CCF's own (prime-field) shares; they never need to be,
//! as shares only travel between Coco nodes and Coco members, encrypted (see
//! [`crate::RsaPublicKey`]).

use crate::SECRET_KEY_BYTES;

/// Most shares one split may produce (CCF's limit on recovery members).
pub const SHAMIR_MAX_SHARES: u8 = 254;
/// Version byte leading a serialised [`Share`].
pub const SHARE_FORMAT_VERSION: u8 = 1;
/// Bytes in a serialised [`Share`]: version ‖ id ‖ threshold ‖ 32 value bytes.
pub const SHARE_BYTES: usize = 3 + SECRET_KEY_BYTES;

/// Why a split, a combination or a share parse was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShamirError {
    /// `split_secret` needs 1 ≤ threshold ≤ shares ≤ [`SHAMIR_MAX_SHARES`].
    #[error("invalid Shamir parameters: threshold {threshold} of {shares} shares")]
    InvalidParameters {
        /// The requested threshold.
        threshold: u8,
        /// The requested number of shares.
        shares: u8,
    },
    /// Fewer shares than the threshold they were split with.
    #[error("{got} shares given, {needed} needed")]
    NotEnoughShares {
        /// The threshold recorded in the shares.
        needed: u8,
        /// How many shares were given.
        got: usize,
    },
    /// Two shares with one id (the same member's share twice, or a forged one).
    #[error("duplicate share id {0}")]
    DuplicateId(u8),
    /// Share id 0 would be the secret itself; no split produces it.
    #[error("share id 0 is invalid")]
    ZeroId,
    /// Shares that record different thresholds come from different splits.
    #[error("shares from different splits: threshold {first} and {other}")]
    ThresholdMismatch {
        /// Threshold of the first share.
        first: u8,
        /// The differing threshold.
        other: u8,
    },
    /// A serialised share of the wrong length.
    #[error("share is {found} bytes, expected {expected}")]
    Length {
        /// [`SHARE_BYTES`].
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// A serialised share with a version this build does not know.
    #[error("unsupported share format version {0}")]
    UnsupportedVersion(u8),
    /// A serialised share recording threshold 0.
    #[error("share records threshold 0")]
    ZeroThreshold,
    /// The OS had no randomness to give.
    #[error("no randomness for the Shamir polynomial")]
    Random,
}

/// One participant's share of a split 32-byte secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Share {
    id: u8,
    threshold: u8,
    value: [u8; SECRET_KEY_BYTES],
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Share {{ id: {}, threshold: {}, .. }}", self.id, self.threshold)
    }
}

impl Share {
    /// The x coordinate (1–255), distinct within a split: who holds this share.
    #[must_use]
    pub fn id(&self) -> u8 {
        self.id
    }

    /// How many shares of this split rebuild the secret.
    #[must_use]
    pub fn threshold(&self) -> u8 {
        self.threshold
    }

    /// The share's value bytes (the polynomials evaluated at [`Share::id`]).
    #[must_use]
    pub fn value(&self) -> &[u8; SECRET_KEY_BYTES] {
        &self.value
    }

    /// The share as [`SHARE_BYTES`] bytes: version ‖ id ‖ threshold ‖ value, for encrypting
    /// to its member.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SHARE_BYTES);
        out.extend_from_slice(&[SHARE_FORMAT_VERSION, self.id, self.threshold]);
        out.extend_from_slice(&self.value);
        out
    }

    /// Parses [`Share::to_bytes`] output (e.g. a member's decrypted submission).
    ///
    /// # Errors
    /// [`ShamirError::Length`], [`ShamirError::UnsupportedVersion`], [`ShamirError::ZeroId`]
    /// or [`ShamirError::ZeroThreshold`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ShamirError> {
        let length_error = ShamirError::Length { expected: SHARE_BYTES, found: bytes.len() };
        let (&version, rest) = bytes.split_first().ok_or(length_error.clone())?;
        if version != SHARE_FORMAT_VERSION {
            return Err(ShamirError::UnsupportedVersion(version));
        }
        let [id, threshold, value @ ..] = rest else { return Err(length_error) };
        let value: [u8; SECRET_KEY_BYTES] = value.try_into().map_err(|_| length_error)?;
        if *id == 0 {
            return Err(ShamirError::ZeroId);
        }
        if *threshold == 0 {
            return Err(ShamirError::ZeroThreshold);
        }
        Ok(Self { id: *id, threshold: *threshold, value })
    }
}

/// Splits `secret` into `shares` shares with ids 1..=`shares`, any `threshold` of which
/// rebuild it. With threshold 1 every share *is* the secret (CCF allows that).
///
/// # Errors
/// [`ShamirError::InvalidParameters`] unless 1 ≤ threshold ≤ shares ≤ 254;
/// [`ShamirError::Random`] if the OS has no randomness.
pub fn split_secret(
    secret: &[u8; SECRET_KEY_BYTES],
    threshold: u8,
    shares: u8,
) -> Result<Vec<Share>, ShamirError> {
    if threshold == 0 || threshold > shares || shares > SHAMIR_MAX_SHARES {
        return Err(ShamirError::InvalidParameters { threshold, shares });
    }
    // Coefficient k (1..threshold) of byte i's polynomial is random[(k - 1) * 32 + i].
    let mut random = vec![0u8; usize::from(threshold - 1) * SECRET_KEY_BYTES];
    aws_lc_rs::rand::fill(&mut random).map_err(|_| ShamirError::Random)?;
    let split = (1..=shares)
        .map(|id| {
            let mut value = [0u8; SECRET_KEY_BYTES];
            for (i, out) in value.iter_mut().enumerate() {
                // Horner from the highest coefficient down to the secret byte.
                let mut y = 0u8;
                for coefficient in random.chunks_exact(SECRET_KEY_BYTES).rev() {
                    y = gf_mul(y, id) ^ coefficient[i];
                }
                *out = gf_mul(y, id) ^ secret[i];
            }
            Share { id, threshold, value }
        })
        .collect();
    random.fill(0);
    Ok(split)
}

/// Rebuilds the secret from at least `threshold` shares of one split (extra shares are
/// fine). Shares of a different split with the same threshold combine to garbage, which the
/// caller detects by failing to unwrap with it (see [`crate::unwrap_key`]).
///
/// # Errors
/// [`ShamirError::NotEnoughShares`], [`ShamirError::ThresholdMismatch`],
/// [`ShamirError::DuplicateId`] or [`ShamirError::ZeroId`].
pub fn combine_shares(shares: &[Share]) -> Result<[u8; SECRET_KEY_BYTES], ShamirError> {
    let Some(first) = shares.first() else {
        return Err(ShamirError::NotEnoughShares { needed: 1, got: 0 });
    };
    let mut seen = [false; 256];
    for share in shares {
        if share.threshold != first.threshold {
            return Err(ShamirError::ThresholdMismatch {
                first: first.threshold,
                other: share.threshold,
            });
        }
        if share.id == 0 {
            return Err(ShamirError::ZeroId);
        }
        let slot = &mut seen[usize::from(share.id)];
        if *slot {
            return Err(ShamirError::DuplicateId(share.id));
        }
        *slot = true;
    }
    if shares.len() < usize::from(first.threshold) {
        return Err(ShamirError::NotEnoughShares { needed: first.threshold, got: shares.len() });
    }
    Ok(interpolate_at_zero(shares))
}

/// Lagrange interpolation at x = 0 through every share, whatever its recorded threshold.
/// Ids must be non-zero and distinct.
fn interpolate_at_zero(shares: &[Share]) -> [u8; SECRET_KEY_BYTES] {
    let mut secret = [0u8; SECRET_KEY_BYTES];
    for share in shares {
        // l_j(0) = Π_{m≠j} x_m / (x_m − x_j); subtraction is XOR in GF(2^8).
        let mut basis = 1u8;
        for other in shares.iter().filter(|other| other.id != share.id) {
            basis = gf_mul(basis, gf_mul(other.id, gf_inv(other.id ^ share.id)));
        }
        for (out, y) in secret.iter_mut().zip(share.value) {
            *out ^= gf_mul(basis, y);
        }
    }
    secret
}

/// Product in GF(2^8) mod x^8 + x^4 + x^3 + x + 1, without branches or tables on the operands.
fn gf_mul(mut a: u8, mut b: u8) -> u8 {
    let mut product = 0u8;
    for _ in 0..8 {
        product ^= a & 0u8.wrapping_sub(b & 1);
        let carry = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (0x1b & carry);
        b >>= 1;
    }
    product
}

/// Inverse in GF(2^8) as a^254 (a^-1 since a^255 = 1); maps 0 to 0.
fn gf_inv(a: u8) -> u8 {
    // 254 = 2 + 4 + 8 + 16 + 32 + 64 + 128.
    let mut square = a;
    let mut inverse = 1u8;
    for _ in 0..7 {
        square = gf_mul(square, square);
        inverse = gf_mul(inverse, square);
    }
    inverse
}

#[cfg(test)]
mod tests;
