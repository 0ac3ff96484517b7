//! The ledger secrets: each encrypts the private domain and derives the commit evidence of
//! the seqnos from where it became current until the next rekey. Old secrets stay, so old
//! entries stay readable; the ledger records each previous secret wrapped under its
//! successor (`public:ccf.internal.historical_encrypted_ledger_secret`).

use coco_crypto::Aes256GcmKey;
use coco_ledger::CommitEvidenceKey;
use coco_types::Seqno;

/// One ledger secret and the first seqno it encrypts.
#[derive(Clone, Debug)]
pub(crate) struct LedgerSecret {
    /// The first seqno sealed with this secret.
    pub(crate) valid_from: Seqno,
    /// AES-256-GCM key of the private domain.
    pub(crate) key: Aes256GcmKey,
    /// Commit evidence derivation from this secret.
    pub(crate) evidence: CommitEvidenceKey,
}

impl LedgerSecret {
    pub(crate) fn new(valid_from: Seqno, key: Aes256GcmKey) -> Self {
        let evidence = CommitEvidenceKey::new(key.raw());
        Self { valid_from, key, evidence }
    }
}

/// Every ledger secret this node knows, oldest first. A node created by genesis knows
/// them all (the first is valid from seqno 1); a node recovering an old ledger knows only
/// its own until members' shares give back the old ones, so seqnos before its first
/// secret have no secret yet and only their public domain can be read.
#[derive(Clone, Debug, Default)]
pub(crate) struct LedgerSecrets {
    chain: Vec<LedgerSecret>,
}

impl LedgerSecrets {
    /// A chain of `secrets`.
    ///
    /// # Panics
    /// If the secrets are empty, start at seqno 0, or do not ascend strictly.
    pub(crate) fn new(chain: Vec<LedgerSecret>) -> Self {
        assert!(chain.first().is_some_and(|s| s.valid_from >= Seqno(1)), "chain starts ≥ 1");
        for pair in chain.windows(2) {
            assert!(pair[0].valid_from < pair[1].valid_from, "secrets ascend by seqno");
        }
        Self { chain }
    }

    /// The secret that seals `seqno`, if this node knows it.
    pub(crate) fn for_seqno(&self, seqno: Seqno) -> Option<&LedgerSecret> {
        let index = self.chain.partition_point(|secret| secret.valid_from <= seqno);
        index.checked_sub(1).map(|index| &self.chain[index])
    }

    /// The newest secret.
    ///
    /// # Panics
    /// If the chain is empty (a recovering node before it has its own secret).
    pub(crate) fn current(&self) -> &LedgerSecret {
        self.chain.last().expect("the node has a ledger secret before it seals anything")
    }

    /// Makes `key` current from `valid_from` on.
    ///
    /// # Panics
    /// If `valid_from` does not follow the current secret's.
    pub(crate) fn rotate(&mut self, valid_from: Seqno, key: Aes256GcmKey) {
        assert!(
            self.chain.last().is_none_or(|current| valid_from > current.valid_from),
            "a rekey moves forward"
        );
        self.chain.push(LedgerSecret::new(valid_from, key));
    }

    /// All secrets, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &LedgerSecret> {
        self.chain.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_seqno_maps_to_the_secret_current_when_it_was_sealed() {
        let key = |byte| Aes256GcmKey::new(&[byte; 32]).unwrap();
        let mut secrets = LedgerSecrets::new(vec![LedgerSecret::new(Seqno(1), key(1))]);
        secrets.rotate(Seqno(10), key(2));
        assert_eq!(secrets.for_seqno(Seqno(9)).unwrap().key.raw(), &[1; 32]);
        assert_eq!(secrets.for_seqno(Seqno(10)).unwrap().key.raw(), &[2; 32]);
        assert_eq!(secrets.current().key.raw(), &[2; 32]);
        assert_eq!(secrets.iter().count(), 2);
    }

    #[test]
    fn a_recovering_chain_knows_nothing_before_its_first_secret() {
        let key = |byte| Aes256GcmKey::new(&[byte; 32]).unwrap();
        let mut secrets = LedgerSecrets::default();
        secrets.rotate(Seqno(20), key(3));
        assert!(secrets.for_seqno(Seqno(19)).is_none());
        assert_eq!(secrets.for_seqno(Seqno(20)).unwrap().key.raw(), &[3; 32]);
    }
}
