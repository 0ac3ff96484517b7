//! Map names and the one function that validates them.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};

/// The prefix that puts a map in the public (cleartext) ledger domain, as in CCF.
pub const PUBLIC_PREFIX: &str = "public:";

/// Longest map name, in bytes.
pub const MAP_NAME_BYTES_MAX: usize = 256;

/// The name of a KV map. Names carry policy: a name starting with [`PUBLIC_PREFIX`] is in
/// the public domain (written to the ledger in clear), any other is private (encrypted by
/// the ledger). The KV only classifies; it never encrypts.
///
/// Held as `Arc<str>` rather than `String` so clones (read sets, write sets, persistent
/// tree path copies) are a reference-count increment, not an allocation. Ordered by bytes,
/// which is the order maps are serialised in.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MapName(Arc<str>);

impl MapName {
    /// Validates and builds a map name.
    ///
    /// # Errors
    /// [`Error::InvalidMapName`] unless the name is non-empty, at most
    /// [`MAP_NAME_BYTES_MAX`] bytes, and printable ASCII (`0x20..=0x7e`).
    pub fn new(name: &str) -> Result<Self> {
        match check(name.as_bytes()) {
            Ok(()) => Ok(Self(Arc::from(name))),
            Err(reason) => {
                Err(Error::InvalidMapName { name: name.chars().take(64).collect(), reason })
            }
        }
    }

    /// Builds a map name from untrusted bytes (a decoder's input).
    pub(crate) fn from_bytes(bytes: &[u8]) -> std::result::Result<Self, &'static str> {
        check(bytes)?;
        let text = std::str::from_utf8(bytes).map_err(|_| "not ASCII")?;
        Ok(Self(Arc::from(text)))
    }

    /// The name as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the map is in the public domain (written to the ledger in clear).
    #[must_use]
    pub fn is_public(&self) -> bool {
        self.0.starts_with(PUBLIC_PREFIX)
    }
}

/// The naming rule, in one place: returns why a name is refused.
fn check(name: &[u8]) -> std::result::Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty");
    }
    if name.len() > MAP_NAME_BYTES_MAX {
        return Err("longer than 256 bytes");
    }
    if !name.iter().all(|byte| (0x20..=0x7e).contains(byte)) {
        return Err("not printable ASCII");
    }
    Ok(())
}

impl TryFrom<&str> for MapName {
    type Error = Error;

    fn try_from(name: &str) -> Result<Self> {
        Self::new(name)
    }
}

impl fmt::Display for MapName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for MapName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_names_and_classifies_domains() {
        let public = MapName::new("public:ccf.gov.nodes.info").unwrap();
        assert!(public.is_public());
        assert_eq!(public.as_str(), "public:ccf.gov.nodes.info");
        let private = MapName::new("records").unwrap();
        assert!(!private.is_public());
        assert!(!MapName::new("Public:x").unwrap().is_public());
        assert!(MapName::new(&"a".repeat(256)).is_ok());
        assert!(MapName::new("with space ~").is_ok());
    }

    #[test]
    fn refuses_invalid_names() {
        for (name, reason) in [
            (String::new(), "empty"),
            ("a".repeat(257), "longer than 256 bytes"),
            ("tab\there".to_owned(), "not printable ASCII"),
            ("caf\u{e9}".to_owned(), "not printable ASCII"),
            ("nul\0".to_owned(), "not printable ASCII"),
            ("del\x7f".to_owned(), "not printable ASCII"),
        ] {
            match MapName::new(&name) {
                Err(Error::InvalidMapName { reason: got, .. }) => assert_eq!(got, reason),
                other => panic!("{name:?} gave {other:?}"),
            }
        }
        assert_eq!(MapName::from_bytes(&[0xff]), Err("not printable ASCII"));
    }

    #[test]
    fn orders_by_bytes() {
        let a = MapName::new("public:a").unwrap();
        let b = MapName::new("public:b").unwrap();
        let upper = MapName::new("Z").unwrap();
        assert!(a < b);
        assert!(upper < a);
    }
}
