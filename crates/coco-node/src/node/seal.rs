//! Committing a transaction: the KV commit, then the ledger entry and the Merkle leaf.

use coco_kv::{CommitOutcome, Tx, WriteSet};
use coco_ledger::{EntryParts, PendingSync, encode_entry, write_set_digest};
use coco_merkle::leaf_digest;
use coco_types::{Digest, Seqno, TxId};

use super::Node;
use crate::error::{Error, Result};

/// What committing a transaction did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Commit {
    /// The transaction only read: nothing was ordered.
    ReadOnly,
    /// The transaction was ordered at this TxId (status `Pending` until a signature).
    Ordered(TxId),
}

impl Node {
    /// Commits `tx`: checks its reads are still current (optimistic concurrency), orders
    /// its writes at the next seqno, seals them into the ledger and the Merkle tree.
    ///
    /// # Errors
    /// [`Error::Kv`] with a conflict when a read is stale (the caller re-executes);
    /// [`Error::WriteSetTooLarge`]; ledger failures. On any error the store is unchanged.
    pub fn commit(&mut self, tx: Tx) -> Result<Commit> {
        self.commit_claimed(tx, Digest::ZERO)
    }

    /// [`Node::commit`] with an application claims digest, which the transaction's Merkle
    /// leaf (and so its receipt) binds.
    ///
    /// # Errors
    /// As [`Node::commit`].
    pub fn commit_claimed(&mut self, tx: Tx, claims_digest: Digest) -> Result<Commit> {
        let outcome = match self.kv.commit(tx) {
            Ok(outcome) => outcome,
            Err(e) => {
                self.metrics.conflicts += 1;
                return Err(Error::Kv(e));
            }
        };
        match outcome {
            CommitOutcome::ReadOnly => Ok(Commit::ReadOnly),
            CommitOutcome::Written { seqno, write_set } => {
                let txid = self.seal_or_undo(seqno, &write_set, false, true, claims_digest)?;
                self.txs_since_signature += 1;
                Ok(Commit::Ordered(txid))
            }
        }
    }

    /// Seals a write set the KV has just applied at `seqno`; on failure undoes the KV
    /// commit so a failed operation changes nothing. `limited` applies the application
    /// write-set bound (the node's own transactions are bounded by construction).
    pub(crate) fn seal_or_undo(
        &mut self,
        seqno: Seqno,
        write_set: &WriteSet,
        is_signature: bool,
        limited: bool,
        claims_digest: Digest,
    ) -> Result<TxId> {
        let bytes = write_set.encoded_len();
        let result = if limited && bytes > self.limits.write_set_bytes_max {
            Err(Error::WriteSetTooLarge { bytes, limit: self.limits.write_set_bytes_max })
        } else {
            self.seal(seqno, write_set, is_signature, claims_digest)
        };
        if result.is_err() {
            let previous = Seqno(seqno.0 - 1);
            self.kv.rollback(previous).expect("the seqno just ordered is above the committed");
        }
        result
    }

    fn seal(
        &mut self,
        seqno: Seqno,
        write_set: &WriteSet,
        is_signature: bool,
        claims_digest: Digest,
    ) -> Result<TxId> {
        assert_eq!(self.tree.len(), seqno.0, "the Merkle tree is one leaf behind the kv");
        let txid = TxId { view: self.view, seqno };
        let (public_maps, private_maps) = write_set.encode_domains();
        let secret = self
            .identity
            .ledger_secrets
            .for_seqno(seqno)
            .expect("new seqnos follow the current secret");
        let commit_evidence = secret.evidence.evidence(txid);
        // The primary ends a chunk at a signature once the chunk is full, and at every
        // snapshot (so a snapshot's successors start a chunk, and older chunks can go),
        // and says so in the entry, so every node that appends it ends its chunk there too.
        // (Only signatures are asked: this runs for every transaction.)
        let ends_chunk =
            is_signature && (self.ledger.chunk_is_full() || self.is_snapshot_point(seqno));
        let flags = if ends_chunk { coco_ledger::FORCE_LEDGER_CHUNK_AFTER } else { 0 };
        let parts = EntryParts {
            view: self.view,
            seqno,
            flags,
            claims_digest,
            commit_evidence_digest: coco_crypto::sha256(commit_evidence.as_bytes()),
            public_maps: &public_maps,
            private_maps: &private_maps,
        };
        let raw = encode_entry(&parts, &secret.key)?;
        self.ledger.append(seqno, &raw, is_signature)?;
        self.tree.append(leaf_digest(&write_set_digest(&raw), &commit_evidence, &claims_digest));
        self.metrics.txs_committed_locally += 1;
        if self.view_history.last().is_none_or(|(view, _)| *view != self.view) {
            self.view_history.push((self.view, seqno));
        }
        Ok(txid)
    }

    /// Makes every appended entry durable (group commit: one fsync for the batch) and
    /// advances the commit point to the last durable signature.
    ///
    /// # Errors
    /// Ledger IO failures, which the host treats as fatal.
    pub fn flush(&mut self) -> Result<TxId> {
        let durable = match self.begin_flush()? {
            Some(pending) => pending.sync()?,
            None => self.durable,
        };
        self.complete_flush(durable)
    }

    /// The first half of [`Node::flush`], under the node's lock: hands the buffered
    /// entries to the OS. The returned sync (`None` when everything is already durable)
    /// may then run outside the lock, so transactions keep executing during the fsync.
    ///
    /// # Errors
    /// Ledger IO failures, which the host treats as fatal.
    pub fn begin_flush(&mut self) -> Result<Option<PendingSync>> {
        if self.durable == self.last_seqno() {
            return Ok(None);
        }
        Ok(Some(self.ledger.begin_flush()?))
    }

    /// Whether a signature is appended but not yet durable: until one is, syncing the
    /// ledger cannot move the commit point.
    pub(crate) fn signature_awaits_sync(&self) -> bool {
        self.signatures.last_key_value().is_some_and(|(seqno, _)| *seqno > self.durable)
    }

    /// The second half of [`Node::flush`]: entries up to `durable` are on disk, so the
    /// commit point moves to the last signature at or before it.
    ///
    /// # Errors
    /// Ledger IO failures while renaming committed chunks.
    ///
    /// # Panics
    /// If `durable` is past the last entry (a sync can only cover appended entries).
    pub fn complete_flush(&mut self, durable: Seqno) -> Result<TxId> {
        assert!(durable <= self.last_seqno(), "durable {durable} past the last entry");
        if durable > self.durable {
            self.durable = durable;
            self.metrics.flushes += 1;
        }
        self.advance_commit()
    }

    /// Moves the commit point to the last signature that is durable here and, once
    /// consensus runs, committed by it (held by a majority).
    pub(crate) fn advance_commit(&mut self) -> Result<TxId> {
        let bound = match self.consensus_committed {
            Some(committed) => committed.min(self.durable),
            None => self.durable,
        };
        let newest = self.signatures.range(..=bound).next_back();
        if let Some((&seqno, record)) = newest
            && seqno > self.committed.seqno
        {
            self.committed = TxId { view: record.view, seqno };
            self.ledger.commit(seqno)?;
            self.kv.compact(seqno)?;
            self.save_commit_marker();
            self.commit_snapshots();
        }
        Ok(self.committed)
    }

    /// Orders a transaction with no writes at the next seqno: a new primary's first entry,
    /// or a slot whose work ordered nothing (a conflict, a refused request).
    pub(crate) fn seal_empty(&mut self) -> Result<TxId> {
        let seqno = self.last_seqno().next();
        self.kv.apply(seqno, &WriteSet::default())?;
        self.seal_or_undo(seqno, &WriteSet::default(), false, false, Digest::ZERO)
    }

    /// Orders a change of consensus configuration: an entry holding only the
    /// configuration, so every node seals the same bytes from the same configuration.
    pub(crate) fn seal_membership(
        &mut self,
        membership: &coco_consensus::Membership,
    ) -> Result<TxId> {
        let mut tx = self.kv.begin();
        let json = serde_json::to_vec(membership).expect("a configuration serialises");
        tx.put(
            &super::signature::map(crate::tables::CONSENSUS_MEMBERSHIP),
            crate::tables::SINGLETON_KEY,
            json,
        );
        let CommitOutcome::Written { seqno, write_set } = self.kv.commit(tx)? else {
            unreachable!("a configuration entry writes");
        };
        let txid = self.seal_or_undo(seqno, &write_set, false, false, Digest::ZERO)?;
        self.memberships.insert(seqno, membership.clone());
        Ok(txid)
    }
}
