//! Ethereum state in Coco's KV: accounts, code and storage live in private maps, so the
//! ledger encrypts them like any private record. revm reads through [`KvDb`] (each read is
//! in the transaction's read set, so optimistic concurrency sees EVM conflicts as KV
//! conflicts) and its state diff is written back by [`apply_state`].
//!
//! Layout (all big-endian):
//! - `coco.eth.accounts`: address (20) → nonce u64 ‖ balance U256 ‖ code hash (32);
//! - `coco.eth.code`: code hash (32) → the contract's code;
//! - `coco.eth.storage`: address (20) ‖ slot (32) → value U256 (a zero value is absent),
//!   so one prefix scan finds an account's storage.

use alloy_primitives::{Address, B256, KECCAK256_EMPTY, U256, keccak256};
use coco_kv::Tx;
use revm::Database;
use revm::database_interface::DBErrorMarker;
use revm::primitives::{StorageKey, StorageValue};
use revm::state::{AccountInfo, Bytecode, EvmState};

use crate::maps;

/// Bytes of an account record.
const ACCOUNT_BYTES: usize = 72;

/// The most storage slots one self-destructed or re-created account may hold: clearing
/// more in one transaction would make its write set unbounded.
pub const CLEARED_SLOTS_MAX: usize = 100_000;

/// An account as the ledger holds it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Account {
    /// Transactions sent (or contracts created, for a contract).
    pub nonce: u64,
    /// Balance in wei.
    pub balance: U256,
    /// Keccak-256 of the code (`KECCAK256_EMPTY` for none).
    pub code_hash: B256,
}

impl Account {
    /// The fixed-width record.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(ACCOUNT_BYTES);
        bytes.extend_from_slice(&self.nonce.to_be_bytes());
        bytes.extend_from_slice(&self.balance.to_be_bytes::<32>());
        bytes.extend_from_slice(self.code_hash.as_slice());
        bytes
    }

    /// Reads a record; `None` when it has the wrong length (a corrupt store).
    #[must_use]
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != ACCOUNT_BYTES {
            return None;
        }
        let nonce = u64::from_be_bytes(bytes[0..8].try_into().ok()?);
        Some(Self {
            nonce,
            balance: U256::from_be_slice(&bytes[8..40]),
            code_hash: B256::from_slice(&bytes[40..72]),
        })
    }
}

/// A read of Ethereum state found something the app never writes: a record of the wrong
/// size, or an account whose code is missing. revm needs its error type to be a
/// `std::error::Error` marked [`DBErrorMarker`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("corrupt Ethereum state: {0}")]
pub struct StateError(pub String);

impl DBErrorMarker for StateError {}

/// The account at `address` (`None` when it does not exist).
///
/// # Errors
/// [`StateError`] for a corrupt record.
pub fn account(tx: &mut Tx, address: &Address) -> Result<Option<Account>, StateError> {
    match tx.get(&maps::ACCOUNTS, address.as_slice()) {
        None => Ok(None),
        Some(bytes) => Account::decode(bytes).map(Some).ok_or_else(|| {
            StateError(format!("account {address} has a {}-byte record", bytes.len()))
        }),
    }
}

/// The code of `address` (empty for none).
///
/// # Errors
/// [`StateError`] for a corrupt record or missing code.
pub fn code_of(tx: &mut Tx, address: &Address) -> Result<Vec<u8>, StateError> {
    match account(tx, address)? {
        Some(account) if account.code_hash != KECCAK256_EMPTY => tx
            .get(&maps::CODE, account.code_hash.as_slice())
            .map(<[u8]>::to_vec)
            .ok_or_else(|| StateError(format!("code {} is missing", account.code_hash))),
        Some(_) | None => Ok(Vec::new()),
    }
}

/// The value of `slot` in the storage of `address` (zero when never written).
pub fn storage_at(tx: &mut Tx, address: &Address, slot: &U256) -> U256 {
    tx.get(&maps::STORAGE, &storage_key(address, slot)).map_or(U256::ZERO, U256::from_be_slice)
}

fn storage_key(address: &Address, slot: &U256) -> Vec<u8> {
    let mut key = Vec::with_capacity(52);
    key.extend_from_slice(address.as_slice());
    key.extend_from_slice(&slot.to_be_bytes::<32>());
    key
}

/// Most bytes of contract code [`CodeCache`] keeps before it starts over.
pub const CODE_CACHE_BYTES_MAX: usize = 64 << 20;

/// Contracts' code as revm runs it, by code hash. revm analyses code (its jump table)
/// each time it loads it, and that was a fifth of an ERC-20 transfer's execution under
/// the node lock. Code is content-addressed and never changes under its hash, so a hit
/// is always right; a contract's account (read through the KV, in the read set) is what
/// says which hash to run. Bounded: past [`CODE_CACHE_BYTES_MAX`] it is emptied.
#[derive(Debug, Default)]
pub struct CodeCache {
    entries: std::sync::Mutex<CodeEntries>,
}

#[derive(Debug, Default)]
struct CodeEntries {
    by_hash: std::collections::BTreeMap<B256, Bytecode>,
    bytes: usize,
}

impl CodeCache {
    /// The analysed code under `code_hash`, from the cache or else read from `tx`
    /// (`None` when the KV has no such code).
    ///
    /// # Panics
    /// If a previous holder of the cache's lock panicked (it only inserts and clears).
    pub fn get_or_load(&self, tx: &mut Tx, code_hash: &B256) -> Option<Bytecode> {
        let mut entries = self.entries.lock().expect("the code cache only inserts and clears");
        if let Some(code) = entries.by_hash.get(code_hash) {
            return Some(code.clone());
        }
        let bytes = tx.get(&maps::CODE, code_hash.as_slice())?;
        let code = Bytecode::new_raw(bytes.to_vec().into());
        if entries.bytes + code.len() > CODE_CACHE_BYTES_MAX {
            *entries = CodeEntries::default();
        }
        entries.bytes += code.len();
        entries.by_hash.insert(*code_hash, code.clone());
        Some(code)
    }
}

/// revm's view of the KV. It never writes: the diff is applied by [`apply_state`].
pub struct KvDb<'a> {
    /// The transaction the EVM runs in.
    pub tx: &'a mut Tx,
    /// Code already analysed.
    pub codes: &'a CodeCache,
    /// The address paid priority fees. It is answered without a KV read and dropped from
    /// the diff: revm touches it in every transaction, and a real account there would make
    /// every pair of concurrent Ethereum transactions conflict. Priority fees are burnt.
    pub beneficiary: Address,
}

impl Database for KvDb<'_> {
    type Error = StateError;

    fn basic(&mut self, address: Address) -> Result<Option<AccountInfo>, StateError> {
        if address == self.beneficiary {
            return Ok(None);
        }
        // `code: None` makes revm ask code_by_hash when it needs the code.
        Ok(account(self.tx, &address)?.map(|a| AccountInfo {
            balance: a.balance,
            nonce: a.nonce,
            code_hash: a.code_hash,
            code: None,
            account_id: None,
        }))
    }

    fn code_by_hash(&mut self, code_hash: B256) -> Result<Bytecode, StateError> {
        if code_hash == KECCAK256_EMPTY || code_hash.is_zero() {
            return Ok(Bytecode::default());
        }
        self.codes
            .get_or_load(self.tx, &code_hash)
            .ok_or_else(|| StateError(format!("code {code_hash} is missing")))
    }

    fn storage(&mut self, address: Address, index: StorageKey) -> Result<StorageValue, StateError> {
        Ok(storage_at(self.tx, &address, &index))
    }

    fn block_hash(&mut self, number: u64) -> Result<B256, StateError> {
        Ok(crate::block::hash_of(self.tx, number).unwrap_or(B256::ZERO))
    }
}

/// Checks that applying `state` stays within bounds, before anything is written: every
/// account it destroys or re-creates holds at most [`CLEARED_SLOTS_MAX`] slots.
///
/// # Errors
/// [`StateError`] naming the account that holds more.
pub fn check_clearable(tx: &mut Tx, state: &EvmState) -> Result<(), StateError> {
    for (address, account) in state {
        if account.is_touched() && (account.is_selfdestructed() || account.is_created()) {
            let slots = tx.prefix(&maps::STORAGE, address.as_slice(), CLEARED_SLOTS_MAX + 1);
            if slots.len() > CLEARED_SLOTS_MAX {
                let max = CLEARED_SLOTS_MAX;
                return Err(StateError(format!("{address} holds more than {max} slots")));
            }
        }
    }
    Ok(())
}

/// Writes revm's state diff into the transaction, in address order (the diff is a hash
/// map: iterating it directly would make write sets differ between runs). Call
/// [`check_clearable`] first.
pub fn apply_state(tx: &mut Tx, state: EvmState, beneficiary: &Address) {
    let mut accounts: Vec<_> = state.into_iter().collect();
    accounts.sort_unstable_by_key(|(address, _)| *address);
    for (address, account) in accounts {
        if !account.is_touched() || address == *beneficiary {
            continue;
        }
        if account.is_selfdestructed() || account.is_created() {
            for (key, _) in tx.prefix(&maps::STORAGE, address.as_slice(), CLEARED_SLOTS_MAX) {
                tx.remove(&maps::STORAGE, key);
            }
        }
        // EIP-161: a touched account left empty is deleted.
        if account.is_selfdestructed() || account.is_empty() {
            tx.remove(&maps::ACCOUNTS, address.as_slice());
            continue;
        }
        let info = &account.info;
        // Code is content-addressed: written once, when first deployed. Writing it again on
        // every call would make every two calls to one contract conflict.
        if let Some(code) = &info.code
            && !code.is_empty()
            && info.code_hash != KECCAK256_EMPTY
            && tx.get(&maps::CODE, info.code_hash.as_slice()).is_none()
        {
            tx.put(&maps::CODE, info.code_hash.as_slice(), code.original_bytes().to_vec());
        }
        let record =
            Account { nonce: info.nonce, balance: info.balance, code_hash: info.code_hash };
        // revm marks a called contract touched though nothing of it changed: writing it
        // anyway would make every two calls to one contract conflict.
        if crate::state::account(tx, &address).ok().flatten() != Some(record) {
            tx.put(&maps::ACCOUNTS, address.as_slice(), record.encode());
        }
        let mut slots: Vec<_> = account.changed_storage_slots().collect();
        slots.sort_unstable_by_key(|(slot, _)| **slot);
        for (slot, value) in slots {
            let key = storage_key(&address, slot);
            let present = value.present_value();
            if present.is_zero() {
                tx.remove(&maps::STORAGE, key);
            } else {
                tx.put(&maps::STORAGE, key, present.to_be_bytes::<32>().to_vec());
            }
        }
    }
}

/// Creates (or replaces) an account at genesis, with optional code and storage.
pub fn put_genesis_account(
    tx: &mut Tx,
    address: &Address,
    balance: U256,
    code: Option<&[u8]>,
    storage: &[(U256, U256)],
) {
    let code_hash = match code {
        Some(code) if !code.is_empty() => {
            let hash = keccak256(code);
            tx.put(&maps::CODE, hash.as_slice(), code.to_vec());
            hash
        }
        Some(_) | None => KECCAK256_EMPTY,
    };
    let nonce = u64::from(code_hash != KECCAK256_EMPTY);
    tx.put(&maps::ACCOUNTS, address.as_slice(), Account { nonce, balance, code_hash }.encode());
    for (slot, value) in storage {
        if !value.is_zero() {
            tx.put(&maps::STORAGE, storage_key(address, slot), value.to_be_bytes::<32>().to_vec());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

    use super::*;

    fn store_with_code(code: &[u8]) -> (coco_kv::Store, B256) {
        let mut store = coco_kv::Store::new();
        let hash = keccak256(code);
        let mut tx = store.begin();
        tx.put(&maps::CODE, hash.as_slice(), code.to_vec());
        store.commit(tx).unwrap();
        (store, hash)
    }

    #[test]
    fn code_is_analysed_once_and_served_by_hash_afterwards() {
        let code = [0x60, 0x01, 0x56, 0x5b, 0x00]; // PUSH1 1, JUMP, JUMPDEST, STOP
        let (mut store, hash) = store_with_code(&code);
        let cache = CodeCache::default();
        let loaded = cache.get_or_load(&mut store.begin(), &hash).unwrap();
        assert_eq!(loaded.original_byte_slice(), code);
        // Gone from the KV, the code is still served: the cache answered, not the store.
        let mut tx = store.begin();
        tx.remove(&maps::CODE, hash.as_slice());
        store.commit(tx).unwrap();
        let cached = cache.get_or_load(&mut store.begin(), &hash).unwrap();
        assert_eq!(cached.original_byte_slice(), code);
        // A hash the cache never saw is read from the KV, and unknown code is none.
        let fresh = CodeCache::default();
        assert!(fresh.get_or_load(&mut store.begin(), &hash).is_none());
    }

    #[test]
    fn the_cache_starts_over_past_its_byte_bound() {
        let big = vec![0x5b; CODE_CACHE_BYTES_MAX / 2 + 1];
        let mut other = big.clone();
        other[0] = 0x00;
        let (mut store, first) = store_with_code(&big);
        let second = keccak256(&other);
        let mut tx = store.begin();
        tx.put(&maps::CODE, second.as_slice(), other);
        store.commit(tx).unwrap();
        let cache = CodeCache::default();
        cache.get_or_load(&mut store.begin(), &first).unwrap();
        cache.get_or_load(&mut store.begin(), &second).unwrap();
        let entries = cache.entries.lock().unwrap();
        assert_eq!(entries.by_hash.len(), 1, "the first was dropped to stay in bound");
        assert!(entries.by_hash.contains_key(&second));
        assert!(entries.bytes <= CODE_CACHE_BYTES_MAX);
    }
}
