//! Coco's cryptography, behind one small API.
//!
//! Owns hashing (SHA-256), HMAC, AES-256-GCM for the ledger's private domain, ECDSA
//! P-384 keys and signatures, X.509 certificates and COSE Sign1. Everything is backed by
//! `aws-lc-rs` (one provider in the graph, also used by rustls): P-384 signing is 7× faster
//! there than in pure Rust, and SHA-256/AES-GCM use the CPU's instructions.
//!
//! Depends only on `coco-types`. Verification paths are deterministic; key and nonce
//! generation draw from the OS, which is the one place Coco's core accepts entropy.
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod aead;
mod error;
mod hash;

pub use aead::{AES_GCM_IV_BYTES, AES_GCM_TAG_BYTES, Aes256GcmKey};
pub use error::{Error, Result};
pub use hash::{Sha256, hmac_sha256, sha256};
