//! Views, seqnos, transaction ids and transaction status.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A view: the consensus epoch in which a primary orders transactions (Raft's term).
/// CCF stores it in 31 bits of the AES-GCM IV, so it never exceeds `i32::MAX`.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct View(pub u64);

/// A seqno: the position of a transaction in the ledger. Seqno 0 is "before the first
/// transaction"; the genesis transaction has seqno 1.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Seqno(pub u64);

impl View {
    /// The largest view the ledger format can carry (31 bits in the IV).
    pub const MAX: Self = Self(0x7fff_ffff);
}

impl Seqno {
    /// The next seqno.
    ///
    /// # Panics
    /// On overflow, which would mean 2^64 transactions.
    #[must_use]
    pub fn next(self) -> Self {
        Self(self.0.checked_add(1).expect("seqno space is 64 bits and never exhausted"))
    }
}

impl fmt::Display for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for Seqno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A transaction id: the view in which it was ordered and its seqno. Written
/// `view.seqno` everywhere (headers, JSON, commit evidence), as in CCF.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct TxId {
    /// The view the primary was in when it ordered the transaction.
    pub view: View,
    /// The transaction's position in the ledger.
    pub seqno: Seqno,
}

impl TxId {
    /// Builds a transaction id.
    #[must_use]
    pub const fn new(view: u64, seqno: u64) -> Self {
        Self { view: View(view), seqno: Seqno(seqno) }
    }
}

impl fmt::Display for TxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.view.0, self.seqno.0)
    }
}

/// Why a `view.seqno` string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxIdParseError {
    /// Not of the form `<view>.<seqno>` with two decimal integers.
    #[error("transaction id {0:?} is not of the form <view>.<seqno>")]
    Malformed(String),
    /// The view does not fit the ledger format's 31 bits.
    #[error("view {0} is larger than the maximum view")]
    ViewTooLarge(u64),
}

impl FromStr for TxId {
    type Err = TxIdParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let malformed = || TxIdParseError::Malformed(s.chars().take(64).collect());
        let (view, seqno) = s.split_once('.').ok_or_else(malformed)?;
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !digits(view) || !digits(seqno) {
            return Err(malformed());
        }
        let view: u64 = view.parse().map_err(|_| malformed())?;
        let seqno: u64 = seqno.parse().map_err(|_| malformed())?;
        if view > View::MAX.0 {
            return Err(TxIdParseError::ViewTooLarge(view));
        }
        Ok(Self::new(view, seqno))
    }
}

impl Serialize for TxId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TxId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What a node knows of a transaction, as CCF defines it (`ccf/tx_status.h`).
///
/// * `Unknown`: this node has never seen that TxId.
/// * `Pending`: ordered and executed here, not yet covered by a committed signature.
/// * `Committed`: a signature transaction at or after it is committed; it never rolls back.
/// * `Invalid`: it was, or will be, rolled back (another transaction holds its seqno).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum TxStatus {
    /// Never seen here.
    Unknown,
    /// Ordered, not yet committed.
    Pending,
    /// Committed: will never be rolled back.
    Committed,
    /// Rolled back, or in a view that lost that seqno.
    Invalid,
}

impl TxStatus {
    /// Derives the status of `tx` from this node's view of the ledger. `view_of_seqno`
    /// is the view this node recorded for `tx.seqno` (`None` if it has no entry there);
    /// `committed` is the last committed TxId; `current_view` the view this node is in.
    /// A pure function, so every node and test derive the same answer from the same facts.
    #[must_use]
    pub fn derive(
        tx: TxId,
        view_of_seqno: Option<View>,
        committed: TxId,
        current_view: View,
    ) -> Self {
        match view_of_seqno {
            None if tx.seqno <= committed.seqno => Self::Invalid,
            // An earlier view can no longer order anything: what it did not, it never will.
            None if tx.view < current_view || tx.view < committed.view => Self::Invalid,
            None => Self::Unknown,
            Some(view) if view != tx.view => Self::Invalid,
            Some(_) if tx.seqno <= committed.seqno => Self::Committed,
            Some(_) => Self::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_rejects_malformed_ids() {
        for bad in ["", "1", "1.", ".1", "a.b", "1.2.3", "-1.2", "1.-2", " 1.2", "1.2 "] {
            assert!(bad.parse::<TxId>().is_err(), "{bad:?} parsed");
        }
        assert_eq!("2147483648.1".parse::<TxId>(), Err(TxIdParseError::ViewTooLarge(1 << 31)));
        assert!("99999999999999999999999.1".parse::<TxId>().is_err());
    }

    #[test]
    fn status_follows_ccf_rules() {
        let committed = TxId::new(2, 10);
        let derive = |tx, view_of_seqno| TxStatus::derive(tx, view_of_seqno, committed, View(2));
        assert_eq!(derive(TxId::new(2, 5), Some(View(2))), TxStatus::Committed);
        assert_eq!(derive(TxId::new(1, 5), Some(View(2))), TxStatus::Invalid);
        assert_eq!(derive(TxId::new(2, 11), Some(View(2))), TxStatus::Pending);
        assert_eq!(derive(TxId::new(2, 12), None), TxStatus::Unknown);
        assert_eq!(derive(TxId::new(1, 12), None), TxStatus::Invalid);
        let later = TxStatus::derive(TxId::new(2, 12), None, committed, View(3));
        assert_eq!(later, TxStatus::Invalid, "view 2 is over: its unknown seqnos never come");
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(view in 0u64..=View::MAX.0, seqno: u64) {
            let tx = TxId::new(view, seqno);
            prop_assert_eq!(tx.to_string().parse::<TxId>(), Ok(tx));
        }
    }
}
