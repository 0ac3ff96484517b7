//! Coco's cryptography, behind one small API.
//!
//! Owns hashing (SHA-256), HMAC, AES-256-GCM for the ledger's private domain, ECDSA
//! P-384 keys and signatures, X.509 certificates and COSE Sign1, and the primitives of
//! disaster recovery: Shamir sharing over GF(2^8) (own code: see `shamir`'s docs for why not
//! vsss-rs), RSA-OAEP-SHA256 for members' encryption keys, and AES-GCM key wrapping.
//! Everything is backed by `aws-lc-rs` (one provider in the graph, also used by rustls):
//! P-384 signing is 7× faster there than in pure Rust, and SHA-256/AES-GCM use the CPU's
//! instructions.
//!
//! Depends only on `coco-types`. Verification paths are deterministic; key and nonce
//! generation draw from the OS, which is the one place Coco's core accepts entropy.
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod aead;
mod cert;
mod cose;
mod cose_receipt;
mod ecdsa;
mod error;
mod hash;
mod pem;
mod rsa;
mod seal;
mod shamir;
#[cfg(test)]
mod test_python;
mod wrap;

pub use aead::{AES_GCM_IV_BYTES, AES_GCM_TAG_BYTES, Aes256GcmKey};
pub use cert::{Certificate, NODE_COMMON_NAME, SERVICE_COMMON_NAME, Validity};
pub use cose::{
    CcfSignatureHeaders, GovEnvelope, cose_signature_from_json, cose_signature_to_json,
    parse_gov_envelope, sign_ccf_root, sign_gov_envelope, verify_ccf_root,
};
pub use cose_receipt::{
    CoseReceiptInfo, LeafComponents, RECEIPT_PATH_STEPS_MAX, build_cose_receipt,
    verify_cose_receipt,
};
pub use ecdsa::{CoseAlgorithm, Curve, SigningKey, VerifyingKey};
pub use error::{Error, Result};
pub use hash::{HmacSha256Key, Sha256, hmac_sha256, sha256};
pub use pem::{
    PEM_LABEL_CERTIFICATE, PEM_LABEL_EC_PRIVATE_KEY, PEM_LABEL_PRIVATE_KEY, PEM_LABEL_PUBLIC_KEY,
    pem_decode, pem_decode_all, pem_encode,
};
pub use rsa::{PEM_LABEL_RSA_PRIVATE_KEY, RsaPrivateKey, RsaPublicKey};
pub use seal::{open_with_key, seal_to_key};
pub use shamir::{
    SHAMIR_MAX_SHARES, SHARE_BYTES, SHARE_FORMAT_VERSION, ShamirError, Share, combine_shares,
    split_secret,
};
pub use wrap::{SECRET_KEY_BYTES, WRAPPED_KEY_BYTES, unwrap_key, wrap_key};
