//! Byte strings as stored in the persistent trees: short ones inline, long ones shared.
//!
//! Tree lookups compare keys at every node; keys behind a pointer cost a cache miss per
//! comparison, and copying a node on write touches every entry's reference count. Keys
//! and values of up to [`INLINE_BYTES_MAX`] bytes therefore live inside the tree node.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Longest byte string kept inline (the enum stays 24 bytes, as big as the `Arc` form).
const INLINE_BYTES_MAX: usize = 22;

/// An immutable byte string, ordered and compared as `[u8]`.
#[derive(Clone)]
pub(crate) enum Bytes {
    Inline { len: u8, data: [u8; INLINE_BYTES_MAX] },
    Shared(Arc<[u8]>),
}

const _: () = assert!(INLINE_BYTES_MAX <= u8::MAX as usize);

impl From<&[u8]> for Bytes {
    fn from(bytes: &[u8]) -> Self {
        if bytes.len() > INLINE_BYTES_MAX {
            return Self::Shared(Arc::from(bytes));
        }
        let mut data = [0; INLINE_BYTES_MAX];
        data[..bytes.len()].copy_from_slice(bytes);
        let len = u8::try_from(bytes.len()).expect("at most INLINE_BYTES_MAX, which fits u8");
        Self::Inline { len, data }
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Self::Inline { len, data } => &data[..usize::from(*len)],
            Self::Shared(bytes) => bytes,
        }
    }
}

impl Borrow<[u8]> for Bytes {
    fn borrow(&self) -> &[u8] {
        self
    }
}

impl PartialEq for Bytes {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Bytes {}

impl PartialOrd for Bytes {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Bytes {
    fn cmp(&self, other: &Self) -> Ordering {
        (**self).cmp(&**other)
    }
}

impl Hash for Bytes {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (**self).hash(state);
    }
}

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02x?}", &**self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_its_slice_at_every_length() {
        let long: Vec<u8> = (0..40).collect();
        for len in 0..long.len() {
            let bytes = Bytes::from(&long[..len]);
            assert_eq!(&*bytes, &long[..len]);
            assert_eq!(matches!(bytes, Bytes::Inline { .. }), len <= INLINE_BYTES_MAX);
        }
        let (short, long) = (Bytes::from(&[1_u8, 2][..]), Bytes::from(&[1_u8; 30][..]));
        assert!(short > long, "ordered by bytes, not by representation");
        assert_eq!(Bytes::from(&[][..]), Bytes::from(&[][..]));
        assert_eq!(size_of::<Bytes>(), 24);
    }
}
