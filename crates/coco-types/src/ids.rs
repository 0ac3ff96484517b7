//! Participant ids. All are SHA-256 digests, as in CCF: a member or user id is the
//! digest of its certificate's DER, a node id the digest of its public key's DER.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Digest, DigestParseError};

macro_rules! digest_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub Digest);

        impl $name {
            /// Lowercase hex, the form CCF uses as a table key and in JSON.
            #[must_use]
            pub fn to_hex(&self) -> String {
                self.0.to_hex()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.to_hex())
            }
        }

        impl FromStr for $name {
            type Err = DigestParseError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }
    };
}

digest_id!(
    /// A node: SHA-256 of the node's public key (SubjectPublicKeyInfo DER).
    NodeId
);
digest_id!(
    /// A member (governs the service): SHA-256 of its certificate DER.
    MemberId
);
digest_id!(
    /// A user (transacts through apps): SHA-256 of its certificate DER.
    UserId
);
