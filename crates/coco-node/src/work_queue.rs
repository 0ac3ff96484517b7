//! Work waiting for consensus to give it a seqno, by ticket. The queue has a lock of its
//! own: requests queue work while consensus executes entries under the node lock, and
//! queuing a batch behind those entries put the request's worker thread to sleep
//! (`sched_switch` traces: a batch's queuing waited longest of all lock takers). Lock
//! order: the node's, then the queue's, never the reverse.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::error::{Error, Result};
use crate::node::Work;

/// The queue. Bounded by the node's `pending_txs_max` (see [`WorkQueue::push_bounded`]);
/// only signatures, which let pending transactions commit, go past it.
pub(crate) struct WorkQueue {
    queued: Mutex<Queued>,
}

struct Queued {
    next_ticket: u64,
    works: HashMap<u64, Work>,
}

impl WorkQueue {
    pub(crate) fn new() -> Self {
        Self { queued: Mutex::new(Queued { next_ticket: 1, works: HashMap::new() }) }
    }

    /// Queues each of `works` under the next ticket, in order, while the transactions
    /// waiting for a signature (`uncommitted`) and the queued works stay below `limit`;
    /// the rest are refused with [`Error::Backpressure`].
    pub(crate) fn push_bounded(
        &self,
        works: impl IntoIterator<Item = Work>,
        uncommitted: u64,
        limit: u64,
    ) -> Vec<Result<u64>> {
        let mut queued = self.queued();
        works.into_iter().map(|work| queued.push_bounded(work, uncommitted, limit)).collect()
    }

    /// [`WorkQueue::push_bounded`] for one work.
    pub(crate) fn push_one_bounded(&self, work: Work, uncommitted: u64, limit: u64) -> Result<u64> {
        self.queued().push_bounded(work, uncommitted, limit)
    }

    /// Queues `work` whatever the bound: for signatures.
    pub(crate) fn push_unbounded(&self, work: Work) -> u64 {
        self.queued().push(work)
    }

    /// Takes the work of `ticket` out of the queue.
    pub(crate) fn take(&self, ticket: u64) -> Option<Work> {
        self.queued().works.remove(&ticket)
    }

    /// A holder panicking mid-insert or mid-remove leaves the map consistent (std's
    /// collections are panic-safe), so a poisoned lock is still usable.
    fn queued(&self) -> MutexGuard<'_, Queued> {
        self.queued.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Queued {
    fn push_bounded(&mut self, work: Work, uncommitted: u64, limit: u64) -> Result<u64> {
        let pending = uncommitted + self.works.len() as u64;
        if pending < limit {
            Ok(self.push(work))
        } else {
            Err(Error::Backpressure { pending, limit })
        }
    }

    fn push(&mut self, work: Work) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let replaced = self.works.insert(ticket, work);
        assert!(replaced.is_none(), "tickets are never reused");
        ticket
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nothing() -> Work {
        Box::new(|_, _| {})
    }

    #[test]
    fn tickets_follow_each_other_and_the_bound_counts_uncommitted_and_queued() {
        let queue = WorkQueue::new();
        let tickets = queue.push_bounded([nothing(), nothing(), nothing()], 1, 3);
        assert!(matches!(tickets[..], [Ok(1), Ok(2), Err(Error::Backpressure { .. })]));
        let refused = queue.push_one_bounded(nothing(), 1, 3);
        assert!(matches!(refused, Err(Error::Backpressure { pending: 3, limit: 3 })));
        assert_eq!(queue.push_unbounded(nothing()), 3, "a signature goes past the bound");

        assert!(queue.take(1).is_some());
        assert!(queue.take(1).is_none(), "a work runs once");
        assert_eq!(queue.push_one_bounded(nothing(), 0, 3).unwrap(), 4, "tickets never repeat");
    }
}
