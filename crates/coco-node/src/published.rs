//! What a request reads without the node lock. Under load consensus holds that lock for
//! one entry after another, and a request that waited for it only to check its caller or
//! whether a signature is due put its worker thread to sleep behind those entries (10-15 %
//! of the workers' time over 60,000 Ethereum transfers, `sched_switch` traces). Whoever
//! releases the lock posts these facts on a [`Board`], so they lag the node by at most the
//! holder running at that moment: as if the request had taken the lock just before it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};

use coco_kv::{MapName, MapView};
use coco_types::UserId;

use crate::node::Node;
use crate::node::signature::map;
use crate::tables;

/// `users.certs`, named once: the board is posted on every release of the node lock.
static USERS: LazyLock<MapName> = LazyLock::new(|| map(tables::USERS_CERTS));

/// The facts requests check, as the last holder of the node's lock left them.
#[derive(Clone)]
pub struct Published {
    facts: Facts,
    signing: SignatureClock,
}

impl Published {
    /// True if `id` is a user of the service (its certificate is in `users.certs`).
    #[must_use]
    pub fn is_user(&self, id: UserId) -> bool {
        self.facts.users.get(id.to_hex().as_bytes()).is_some()
    }

    /// Whether the service is Open to users.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.facts.open
    }

    /// True when a signature transaction is due (see [`Node::signature_due`]).
    #[must_use]
    pub fn signature_due(&self, now_ms: u64) -> bool {
        self.signing.due(now_ms)
    }
}

/// The users map and the service status. Only that map is kept, not the whole state: a
/// copy of a map makes the next write to it copy the path it changes, and every
/// transaction writes some map (keeping the whole state cost 6 us of node CPU per
/// Ethereum transfer); users change by governance only.
#[derive(Clone)]
struct Facts {
    users: MapView,
    open: bool,
}

impl Facts {
    fn of(node: &Node) -> Self {
        Self { users: node.kv.map_view(&USERS), open: node.is_open() }
    }

    fn still_hold(&self, node: &Node) -> bool {
        self.open == node.is_open() && node.kv.map_is(&USERS, &self.users)
    }
}

/// Where each release of the node lock posts what requests read without it. Posting is
/// two relaxed stores and a comparison; the facts are replaced only when they changed.
pub(crate) struct Board {
    facts: Mutex<Facts>,
    /// Transactions ordered and not committed: with the queued works, what backpressure
    /// bounds.
    uncommitted: AtomicU64,
    unsigned: AtomicU64,
    last_signature_ms: AtomicU64,
    sig_tx_interval: u64,
    sig_ms_interval: u64,
}

impl Board {
    pub(crate) fn new(node: &Node) -> Self {
        let clock = node.signature_clock();
        Self {
            facts: Mutex::new(Facts::of(node)),
            uncommitted: AtomicU64::new(uncommitted(node)),
            unsigned: AtomicU64::new(clock.unsigned),
            last_signature_ms: AtomicU64::new(clock.last_ms),
            sig_tx_interval: clock.tx_interval,
            sig_ms_interval: clock.ms_interval,
        }
    }

    /// Posts `node`'s facts; called by the holder of the node lock as it releases it.
    pub(crate) fn post(&self, node: &Node) {
        let clock = node.signature_clock();
        // Relaxed: a reader may pair a new count with an old time (or the reverse), which
        // only moves when it nudges the signer; the signer decides under the lock.
        self.uncommitted.store(uncommitted(node), Ordering::Relaxed);
        self.unsigned.store(clock.unsigned, Ordering::Relaxed);
        self.last_signature_ms.store(clock.last_ms, Ordering::Relaxed);
        let mut facts = self.facts();
        if !facts.still_hold(node) {
            let before = std::mem::replace(&mut *facts, Facts::of(node));
            drop(facts);
            drop(before); // May free a users tree: outside the board's lock.
        }
    }

    /// Transactions ordered and not committed, as the last release of the node lock left
    /// them.
    pub(crate) fn uncommitted(&self) -> u64 {
        self.uncommitted.load(Ordering::Relaxed)
    }

    /// What the last release of the node lock posted.
    pub(crate) fn read(&self) -> Published {
        let signing = SignatureClock {
            unsigned: self.unsigned.load(Ordering::Relaxed),
            last_ms: self.last_signature_ms.load(Ordering::Relaxed),
            tx_interval: self.sig_tx_interval,
            ms_interval: self.sig_ms_interval,
        };
        Published { facts: self.facts().clone(), signing }
    }

    /// The board's lock is held only to compare, swap or clone facts, none of which panics.
    fn facts(&self) -> MutexGuard<'_, Facts> {
        self.facts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn uncommitted(node: &Node) -> u64 {
    node.last_seqno().0 - node.committed.seqno.0
}

/// When the next signature is due: after `tx_interval` unsigned transactions, or
/// `ms_interval` after the last signature if any transaction is unsigned.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SignatureClock {
    pub(crate) unsigned: u64,
    pub(crate) last_ms: u64,
    pub(crate) tx_interval: u64,
    pub(crate) ms_interval: u64,
}

impl SignatureClock {
    pub(crate) fn due(&self, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.unsigned >= self.tx_interval || (self.unsigned > 0 && elapsed >= self.ms_interval)
    }
}
