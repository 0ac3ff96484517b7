//! Signing Ethereum transactions with a local key: for `coco bench eth`, which submits
//! pre-signed transfers, and for tests. Deterministic (RFC 6979) and low-`s`, as ethers
//! and eth-account sign, so the same inputs give the same transaction hash.

use alloy_consensus::{SignableTransaction, Signed, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Signature, keccak256};
use k256::ecdsa::SigningKey;

/// A private key that signs transactions.
#[derive(Clone)]
pub struct LocalKey(SigningKey);

/// A key that is not a secp256k1 scalar.
#[derive(Debug, thiserror::Error)]
#[error("not a secp256k1 private key: {0}")]
pub struct KeyError(String);

impl LocalKey {
    /// From 32 bytes of hex (with or without `0x`).
    ///
    /// # Errors
    /// [`KeyError`] for anything else.
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let bytes = alloy_primitives::hex::decode(text).map_err(|e| KeyError(e.to_string()))?;
        SigningKey::from_slice(&bytes).map(Self).map_err(|e| KeyError(e.to_string()))
    }

    /// The key's Ethereum address.
    #[must_use]
    pub fn address(&self) -> Address {
        let point = self.0.verifying_key().to_encoded_point(false);
        Address::from_slice(&keccak256(&point.as_bytes()[1..])[12..])
    }

    /// Signs `tx`: returns its EIP-2718 bytes and hash.
    ///
    /// # Panics
    /// Never: signing a 32-byte prehash with a valid key cannot fail.
    pub fn sign<T>(&self, tx: T) -> (Vec<u8>, B256)
    where
        T: SignableTransaction<Signature>,
        TxEnvelope: From<Signed<T>>,
    {
        let prehash = tx.signature_hash();
        let (signature, recovery) =
            self.0.sign_prehash_recoverable(prehash.as_slice()).expect("a 32-byte prehash signs");
        let envelope: TxEnvelope = tx.into_signed(Signature::from((signature, recovery))).into();
        (envelope.encoded_2718(), *envelope.tx_hash())
    }
}

impl std::fmt::Debug for LocalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LocalKey({})", self.address())
    }
}

/// An EIP-1559 transaction in plain types, for callers that do not use alloy's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Eip1559 {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The sender's nonce.
    pub nonce: u64,
    /// The callee; `None` creates a contract.
    pub to: Option<[u8; 20]>,
    /// Wei sent.
    pub value: u128,
    /// Gas limit.
    pub gas_limit: u64,
    /// Fee cap per gas (wei).
    pub max_fee_per_gas: u128,
    /// Tip per gas (wei).
    pub max_priority_fee_per_gas: u128,
    /// Calldata or creation code.
    pub input: Vec<u8>,
}

impl LocalKey {
    /// Signs `tx`: its EIP-2718 bytes and hash.
    #[must_use]
    pub fn sign_eip1559(&self, tx: &Eip1559) -> (Vec<u8>, [u8; 32]) {
        let to = tx.to.map_or(alloy_primitives::TxKind::Create, |to| {
            alloy_primitives::TxKind::Call(Address::from(to))
        });
        let (raw, hash) = self.sign(alloy_consensus::TxEip1559 {
            chain_id: tx.chain_id,
            nonce: tx.nonce,
            gas_limit: tx.gas_limit,
            max_fee_per_gas: tx.max_fee_per_gas,
            max_priority_fee_per_gas: tx.max_priority_fee_per_gas,
            to,
            value: alloy_primitives::U256::from(tx.value),
            access_list: alloy_eips::eip2930::AccessList::default(),
            input: tx.input.clone().into(),
        });
        (raw, hash.0)
    }
}
