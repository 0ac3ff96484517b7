//! Blocks. A block is the Ethereum transactions ordered between two seals, and the node
//! seals right before each signature transaction, so a block and everything in it commit
//! with the signature that follows. Every transaction reads the open block ([`Head`]), so
//! one that executed against a block sealed before it commits conflicts and runs again:
//! the number and timestamp a transaction saw are always those of the block it lands in.
//!
//! A block's timestamp is stamped by its first transaction (the primary's clock, never
//! earlier than the parent's), so a block after an idle period does not carry old time.

use std::collections::HashMap;

use alloy_consensus::proofs::ordered_trie_root_with_encoder;
use alloy_consensus::{
    EMPTY_OMMER_ROOT_HASH, Eip658Value, Header, Receipt, ReceiptEnvelope, ReceiptWithBloom, TxType,
};
use alloy_eips::eip2718::Encodable2718 as _;
use alloy_primitives::{B256, Bloom, BloomInput, Bytes, Log, U256, keccak256};
use alloy_rlp::Encodable as _;
use coco_kv::Tx;

use crate::execute::BlockContext;
use crate::maps;
use crate::records::{self, BlockRecord, ChainRecord, Head, TxPlace, TxRecord};
use crate::state::StateError;

const HEAD_KEY: &[u8] = b"head";
const CHAIN_KEY: &[u8] = b"config";

/// Most pending transactions one seal looks at: bounds its reads under the node lock. More
/// than this pending means seals failed for long; the oldest are sealed first regardless.
pub const PENDING_SCAN_MAX: usize = 1 << 20;

/// What a seal writes per transaction, at most (its place, the removal of its pending
/// marker, its hash in the block): a block takes as many as the write-set bound allows.
pub const SEAL_BYTES_PER_TX: u64 = 256;

/// Most transactions one block takes when sealing writes at most `write_set_bytes_max`
/// bytes (at least one, at most 10,000); the rest wait for the next seal.
#[must_use]
pub fn block_txs_max(write_set_bytes_max: u64) -> usize {
    let fitting = (write_set_bytes_max / SEAL_BYTES_PER_TX).saturating_sub(64).clamp(1, 10_000);
    usize::try_from(fitting).unwrap_or(10_000)
}

/// The chain's parameters.
///
/// # Errors
/// [`StateError`] when the chain has no genesis or its record is corrupt.
pub fn chain(tx: &mut Tx) -> Result<ChainRecord, StateError> {
    let bytes = tx
        .get(&maps::CHAIN, CHAIN_KEY)
        .ok_or_else(|| StateError("the Ethereum chain has no genesis".to_owned()))?;
    records::decode(bytes, "chain record")
}

/// The open block.
///
/// # Errors
/// [`StateError`] when the chain has no genesis or its record is corrupt.
pub fn head(tx: &mut Tx) -> Result<Head, StateError> {
    let bytes = tx
        .get(&maps::CHAIN, HEAD_KEY)
        .ok_or_else(|| StateError("the Ethereum chain has no genesis".to_owned()))?;
    records::decode(bytes, "head record")
}

fn put_head(tx: &mut Tx, head: &Head) {
    tx.put(&maps::CHAIN, HEAD_KEY, records::encode(head));
}

/// The open block as a transaction executing now sees it, and the head to write if this
/// transaction is the block's first (it stamps the time).
///
/// # Errors
/// [`StateError`] as [`chain`] and [`head`].
pub fn open_block(tx: &mut Tx, now_s: u64) -> Result<(BlockContext, Option<Head>), StateError> {
    let chain = chain(tx)?;
    let mut head = head(tx)?;
    let stamp = if head.timestamp == 0 {
        head.timestamp = now_s.max(head.parent_timestamp);
        Some(head.clone())
    } else {
        None
    };
    let context = BlockContext {
        chain_id: chain.chain_id,
        number: head.number,
        timestamp: head.timestamp,
        base_fee: chain.base_fee,
        gas_limit: chain.gas_limit,
    };
    Ok((context, stamp))
}

/// Records an executed transaction for the next seal.
pub fn add_pending(tx: &mut Tx, hash: &B256, record: &TxRecord, stamp: Option<Head>) {
    if let Some(head) = stamp {
        put_head(tx, &head);
    }
    tx.put(&maps::TXS, hash.as_slice(), records::encode(record));
    tx.put(&maps::PENDING, hash.as_slice(), Vec::new());
}

/// Whether a seal has work: executed transactions waiting, or the empty block that
/// follows a block with transactions ([`Head::follow_up`]).
pub fn has_pending(tx: &mut Tx) -> bool {
    !tx.page(&maps::PENDING, None, 1).items.is_empty() || head(tx).is_ok_and(|head| head.follow_up)
}

/// The hash of block `number`, if sealed.
pub fn hash_of(tx: &mut Tx, number: u64) -> Option<B256> {
    tx.get(&maps::BLOCK_HASHES, &number.to_be_bytes())
        .filter(|bytes| bytes.len() == 32)
        .map(B256::from_slice)
}

/// Block `number`, if sealed.
///
/// # Errors
/// [`StateError`] for a corrupt record.
pub fn block(tx: &mut Tx, number: u64) -> Result<Option<BlockRecord>, StateError> {
    tx.get(&maps::BLOCKS, &number.to_be_bytes())
        .map(|bytes| records::decode(bytes, "block record"))
        .transpose()
}

/// The number of the block with `hash`, if sealed.
pub fn number_of(tx: &mut Tx, hash: &B256) -> Option<u64> {
    tx.get(&maps::BLOCK_NUMBERS, hash.as_slice())
        .and_then(|bytes| bytes.try_into().ok())
        .map(u64::from_be_bytes)
}

/// The newest block committed at or before seqno `committed` (blocks sealed since are not
/// final yet: a primary that fails before their signature commits takes them along).
///
/// # Errors
/// As [`head`].
pub fn latest(tx: &mut Tx, committed: u64) -> Result<u64, StateError> {
    let mut number = head(tx)?.number.saturating_sub(1);
    while number > 0 {
        let version =
            tx.get_versioned(&maps::BLOCK_HASHES, &number.to_be_bytes()).and_then(|(_, v)| v);
        if version.is_some_and(|seqno| seqno.0 <= committed) {
            break;
        }
        number -= 1;
    }
    Ok(number)
}

/// Creates the chain: its parameters and block 0.
///
/// # Panics
/// Never: an empty block has no record to find corrupt.
pub fn genesis(tx: &mut Tx, chain: &ChainRecord, now_s: u64) {
    tx.put(&maps::CHAIN, CHAIN_KEY, records::encode(chain));
    let head = Head {
        number: 0,
        parent_hash: B256::ZERO.to_vec(),
        parent_timestamp: 0,
        timestamp: now_s,
        follow_up: false,
    };
    write_block(tx, chain, &head, &[], &[]).expect("an empty genesis block has nothing to check");
}

/// Seals the pending transactions into the open block, in the order they were ordered.
/// Returns the block, or `None` when nothing was pending.
///
/// # Errors
/// [`StateError`] for corrupt records.
pub fn seal(tx: &mut Tx, now_s: u64, txs_max: usize) -> Result<Option<BlockRecord>, StateError> {
    let chain = chain(tx)?;
    let mut head = head(tx)?;
    // Every marker's transaction, ordered by the seqno that wrote it: a block takes the
    // oldest, so a sender's transactions stay in nonce order across blocks. The record
    // was written with its marker, so the record's version is the marker's.
    let mut pending = Vec::new();
    for (key, _) in tx.page(&maps::PENDING, None, PENDING_SCAN_MAX).items {
        let hash = records::hash32(&key, "pending marker")?;
        let (bytes, seqno) = tx
            .get_versioned(&maps::TXS, &key)
            .ok_or_else(|| StateError(format!("pending transaction {hash} has no record")))?;
        pending.push((seqno, hash, bytes.to_vec()));
    }
    if pending.is_empty() && !head.follow_up {
        return Ok(None);
    }
    pending.sort_unstable_by_key(|(seqno, hash, _)| (*seqno, *hash));
    pending.truncate(txs_max.max(1));
    let mut txs = Vec::with_capacity(pending.len());
    for (_, hash, bytes) in pending {
        let record: TxRecord = records::decode(&bytes, "transaction record")?;
        tx.remove(&maps::PENDING, hash.to_vec());
        txs.push((hash, record));
    }
    if head.timestamp == 0 {
        head.timestamp = now_s.max(head.parent_timestamp);
    }
    let (hashes, records): (Vec<_>, Vec<_>) = txs.into_iter().unzip();
    write_block(tx, &chain, &head, &hashes, &records).map(Some)
}

fn write_block(
    tx: &mut Tx,
    chain: &ChainRecord,
    head: &Head,
    hashes: &[B256],
    txs: &[TxRecord],
) -> Result<BlockRecord, StateError> {
    // Each receipt is built when the trie asks for its bytes, not all kept at once: a
    // block of thousands of receipts (a bloom each) was megabytes allocated per seal.
    let mut items = Vec::with_capacity(txs.len());
    let mut cumulative = 0u64;
    let mut log_index = 0u64;
    for (index, (hash, record)) in hashes.iter().zip(txs).enumerate() {
        cumulative += record.gas_used;
        let place = TxPlace {
            block_number: head.number,
            index: index as u64,
            cumulative_gas_used: cumulative,
            first_log_index: log_index,
        };
        log_index += record.logs.len() as u64;
        tx.put(&maps::TX_PLACES, hash.as_slice(), records::encode(&place));
        items.push((record, cumulative));
    }
    let (receipts_root, bloom) = receipts_root_and_bloom(&items)?;
    let header = Header {
        parent_hash: B256::from_slice(&head.parent_hash),
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        // The trie's values are the EIP-2718 bytes: the recorded raw transactions as sent.
        transactions_root: ordered_trie_root_with_encoder(txs, |t: &TxRecord, buf| {
            buf.extend_from_slice(&t.raw);
        }),
        receipts_root,
        logs_bloom: bloom,
        difficulty: U256::ZERO,
        number: head.number,
        gas_limit: chain.gas_limit,
        gas_used: cumulative,
        timestamp: head.timestamp,
        extra_data: Bytes::new(),
        base_fee_per_gas: Some(chain.base_fee),
        ..Header::default()
    };
    let hash = header.hash_slow();
    let block = BlockRecord {
        number: head.number,
        hash: hash.to_vec(),
        parent_hash: head.parent_hash.clone(),
        timestamp: head.timestamp,
        gas_used: cumulative,
        gas_limit: chain.gas_limit,
        base_fee: chain.base_fee,
        logs_bloom: bloom.to_vec(),
        transactions_root: header.transactions_root.to_vec(),
        receipts_root: header.receipts_root.to_vec(),
        size: (header.length() + txs.iter().map(|t| t.raw.len()).sum::<usize>()) as u64,
        tx_hashes: hashes.iter().flat_map(|h| h.0).collect(),
    };
    let number = head.number.to_be_bytes();
    tx.put(&maps::BLOCKS, number, records::encode(&block));
    tx.put(&maps::BLOCK_HASHES, number, hash.to_vec());
    tx.put(&maps::BLOCK_NUMBERS, hash.as_slice(), number.to_vec());
    let next = Head {
        number: head.number + 1,
        parent_hash: hash.to_vec(),
        parent_timestamp: head.timestamp,
        timestamp: 0,
        follow_up: !txs.is_empty(),
    };
    put_head(tx, &next);
    Ok(block)
}

/// The receipts root and the block's bloom of `items` (a record and the block's gas up to
/// and including it, in block order).
fn receipts_root_and_bloom(items: &[(&TxRecord, u64)]) -> Result<(B256, Bloom), StateError> {
    let mut bloom_hashes = BloomHashes::default();
    let mut bloom = Bloom::ZERO;
    let mut corrupt = None;
    let root =
        ordered_trie_root_with_encoder(items, |(record, cumulative), buf| {
            match receipt_typed(tx_type(&record.raw), record, *cumulative, &mut bloom_hashes) {
                Ok(receipt) => {
                    bloom |= *receipt.logs_bloom();
                    receipt.encode_2718(buf);
                }
                Err(e) => corrupt = Some(e),
            }
        });
    match corrupt {
        Some(e) => Err(e),
        None => Ok((root, bloom)),
    }
}

/// Keccak-256 of the log addresses and topics one seal has hashed for blooms. A block's
/// logs repeat them (one token's address and event signature, its holders' addresses as
/// topics), and hashing each again was most of a seal's Keccak. Lives for one seal, so
/// bounded by the block's logs.
#[derive(Default)]
struct BloomHashes(HashMap<Vec<u8>, B256>);

impl BloomHashes {
    fn get(&mut self, input: &[u8]) -> B256 {
        if let Some(hash) = self.0.get(input) {
            return *hash;
        }
        let hash = keccak256(input);
        self.0.insert(input.to_vec(), hash);
        hash
    }
}

/// The EIP-2718 type of a transaction's bytes: a first byte below 0x80 is the type, a
/// legacy transaction is an RLP list (0xc0 and above).
#[must_use]
pub fn tx_type(raw: &[u8]) -> u8 {
    match raw.first() {
        Some(&first) if first < 0x80 => first,
        Some(_) | None => 0,
    }
}

/// The EIP-2718 receipt of a recorded transaction of type `ty`.
///
/// # Errors
/// [`StateError`] for a type or log no executed transaction has (a corrupt record).
pub fn receipt_envelope(
    ty: u8,
    record: &TxRecord,
    cumulative: u64,
) -> Result<ReceiptEnvelope, StateError> {
    receipt_typed(ty, record, cumulative, &mut BloomHashes::default())
}

fn receipt_typed(
    ty: u8,
    record: &TxRecord,
    cumulative: u64,
    hashes: &mut BloomHashes,
) -> Result<ReceiptEnvelope, StateError> {
    let logs: Vec<Log> =
        record.logs.iter().map(records::LogRecord::to_log).collect::<Result<_, _>>()?;
    let mut logs_bloom = Bloom::ZERO;
    for log in &logs {
        logs_bloom.accrue(BloomInput::Hash(hashes.get(log.address.as_slice())));
        for topic in log.topics() {
            logs_bloom.accrue(BloomInput::Hash(hashes.get(topic.as_slice())));
        }
    }
    let receipt = Receipt {
        status: Eip658Value::Eip658(record.success),
        cumulative_gas_used: cumulative,
        logs,
    };
    let ty = TxType::try_from(ty).map_err(|_| StateError(format!("transaction type {ty}")))?;
    Ok(ReceiptEnvelope::from_typed(ty, ReceiptWithBloom { receipt, logs_bloom }))
}
