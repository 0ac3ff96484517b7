//! The store against a serial model: random transactions begun at different snapshots,
//! interleaved and committed in random order, with rollbacks and compactions. Every
//! committed transaction must observe exactly what a serial execution at its seqno
//! would; the state after every step must equal the model's (values and versions); a
//! backup applying the committed write sets must stay identical to the primary.

use std::collections::BTreeMap;
use std::ops::RangeBounds;

use proptest::prelude::*;

use super::*;

/// Map name → key → (value, version).
type ModelState = BTreeMap<String, BTreeMap<Vec<u8>, (Vec<u8>, u64)>>;

/// A transaction's own writes: (map index, key) → value, `None` for a remove.
type OwnWrites = BTreeMap<(usize, Vec<u8>), Option<Vec<u8>>>;

const MAPS: [&str; 2] = ["public:a", "b"];
const SLOTS: usize = 3;

#[derive(Clone, Debug)]
enum Action {
    Begin { slot: usize },
    Get { slot: usize, map: usize, key: u8 },
    Put { slot: usize, map: usize, key: u8 },
    Remove { slot: usize, map: usize, key: u8 },
    Range { slot: usize, map: usize, start: Option<u8>, end: Option<u8>, limit: usize },
    Commit { slot: usize },
    Rollback { back: u64 },
    Compact { back: u64 },
}

/// One operation of a transaction with what it observed.
#[derive(Clone, Debug)]
enum Logged {
    Get {
        map: usize,
        key: u8,
        seen: Option<Vec<u8>>,
    },
    Put {
        map: usize,
        key: u8,
        value: Vec<u8>,
    },
    Remove {
        map: usize,
        key: u8,
    },
    Range {
        map: usize,
        start: Option<u8>,
        end: Option<u8>,
        limit: usize,
        seen: Vec<(Vec<u8>, Vec<u8>)>,
    },
}

struct Running {
    tx: Tx,
    log: Vec<Logged>,
    epoch: u64,
}

struct Harness {
    store: Store,
    backup: Store,
    /// The model's state at every seqno from 0 to current.
    states: Vec<ModelState>,
    compacted: u64,
    epoch: u64,
    slots: Vec<Option<Running>>,
    next_value: u32,
}

fn action() -> impl Strategy<Value = Action> {
    let slot = 0..SLOTS;
    let point = (0..SLOTS, 0..MAPS.len(), 0_u8..6);
    let bound = || proptest::option::of(0_u8..6);
    let range = (0..SLOTS, 0..MAPS.len(), bound(), bound(), 0_usize..4);
    prop_oneof![
        2 => slot.clone().prop_map(|slot| Action::Begin { slot }),
        3 => point.clone().prop_map(|(slot, map, key)| Action::Get { slot, map, key }),
        3 => point.clone().prop_map(|(slot, map, key)| Action::Put { slot, map, key }),
        1 => point.prop_map(|(slot, map, key)| Action::Remove { slot, map, key }),
        2 => range.prop_map(|(slot, map, start, end, limit)| {
            Action::Range { slot, map, start, end, limit }
        }),
        3 => slot.prop_map(|slot| Action::Commit { slot }),
        1 => (0_u64..4).prop_map(|back| Action::Rollback { back }),
        1 => (0_u64..4).prop_map(|back| Action::Compact { back }),
    ]
}

fn name(map: usize) -> MapName {
    MapName::new(MAPS[map]).unwrap()
}

fn bounds(start: Option<u8>, end: Option<u8>) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    (
        start.map_or(Bound::Unbounded, |k| Bound::Included(vec![k])),
        end.map_or(Bound::Unbounded, |k| Bound::Excluded(vec![k])),
    )
}

fn dump(state: &State) -> ModelState {
    let mut out = ModelState::new();
    for (map, entries) in &state.maps {
        let entries = entries
            .entries
            .iter()
            .map(|(k, v)| (k.to_vec(), (v.value.to_vec(), v.version.0)))
            .collect();
        out.insert(map.as_str().to_owned(), entries);
    }
    out
}

/// Re-executes a transaction's log serially on `state`; returns whether every read
/// observes what it observed when it ran, and the writes.
fn replay(state: &ModelState, log: &[Logged]) -> (bool, OwnWrites) {
    let mut own = OwnWrites::new();
    let view = |own: &OwnWrites, map: usize| {
        let mut entries: BTreeMap<Vec<u8>, Vec<u8>> = state
            .get(MAPS[map])
            .map(|entries| entries.iter().map(|(k, (v, _))| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        for ((written_map, key), value) in own {
            if *written_map == map {
                match value {
                    Some(value) => entries.insert(key.clone(), value.clone()),
                    None => entries.remove(key),
                };
            }
        }
        entries
    };
    for logged in log {
        match logged {
            Logged::Get { map, key, seen } => {
                if view(&own, *map).get(&vec![*key]) != seen.as_ref() {
                    return (false, own);
                }
            }
            Logged::Put { map, key, value } => {
                own.insert((*map, vec![*key]), Some(value.clone()));
            }
            Logged::Remove { map, key } => {
                own.insert((*map, vec![*key]), None);
            }
            Logged::Range { map, start, end, limit, seen } => {
                let range = bounds(*start, *end);
                let expected: Vec<_> = view(&own, *map)
                    .into_iter()
                    .filter(|(key, _)| range.contains(key))
                    .take(*limit)
                    .collect();
                if expected != *seen {
                    return (false, own);
                }
            }
        }
    }
    (true, own)
}

impl Harness {
    fn new() -> Self {
        Self {
            store: Store::new(),
            backup: Store::new(),
            states: vec![ModelState::new()],
            compacted: 0,
            epoch: 0,
            slots: (0..SLOTS).map(|_| None).collect(),
            next_value: 0,
        }
    }

    fn current(&self) -> u64 {
        self.states.len() as u64 - 1
    }

    fn step(&mut self, action: Action) {
        match action {
            Action::Begin { slot } => {
                self.slots[slot] =
                    Some(Running { tx: self.store.begin(), log: Vec::new(), epoch: self.epoch });
            }
            Action::Get { slot, map, key } => self.with_tx(slot, |tx| {
                let seen = tx.get(&name(map), &[key]).map(<[u8]>::to_vec);
                Logged::Get { map, key, seen }
            }),
            Action::Put { slot, map, key } => {
                self.next_value += 1;
                let value = self.next_value.to_le_bytes().to_vec();
                self.with_tx(slot, |tx| {
                    tx.put(&name(map), [key], value.clone());
                    Logged::Put { map, key, value }
                });
            }
            Action::Remove { slot, map, key } => self.with_tx(slot, |tx| {
                tx.remove(&name(map), [key]);
                Logged::Remove { map, key }
            }),
            Action::Range { slot, map, start, end, limit } => self.with_tx(slot, |tx| {
                let (low, high) = bounds(start, end);
                let seen = tx.range(&name(map), as_slice_bound(&low), as_slice_bound(&high), limit);
                Logged::Range { map, start, end, limit, seen }
            }),
            Action::Commit { slot } => self.commit(slot),
            Action::Rollback { back } => self.rollback(back),
            Action::Compact { back } => {
                let to = self.current().saturating_sub(back);
                self.store.compact(Seqno(to)).unwrap();
                self.backup.compact(Seqno(to)).unwrap();
                self.compacted = self.compacted.max(to);
            }
        }
        self.check();
    }

    fn with_tx(&mut self, slot: usize, f: impl FnOnce(&mut Tx) -> Logged) {
        if let Some(running) = &mut self.slots[slot] {
            let logged = f(&mut running.tx);
            running.log.push(logged);
        }
    }

    fn commit(&mut self, slot: usize) {
        let Some(running) = self.slots[slot].take() else { return };
        let (valid, writes) = replay(&self.states[self.states.len() - 1], &running.log);
        let result = self.store.commit(running.tx);
        if running.epoch != self.epoch {
            let conflict = match result {
                Err(Error::Conflict(conflict)) => *conflict,
                other => panic!("expected a rollback conflict, got {other:?}"),
            };
            assert!(matches!(conflict, Conflict::RolledBack { .. }));
            return;
        }
        match result {
            Ok(CommitOutcome::ReadOnly) => {
                assert!(valid, "a transaction whose reads changed committed");
                assert!(writes.is_empty(), "a writing transaction committed read-only");
            }
            Ok(CommitOutcome::Written { seqno, write_set }) => {
                assert!(valid, "a transaction whose reads changed committed");
                assert_eq!(seqno.0, self.current() + 1);
                let mut next = self.states[self.states.len() - 1].clone();
                for ((map, key), value) in writes {
                    let entries = next.entry(MAPS[map].to_owned()).or_default();
                    match value {
                        Some(value) => entries.insert(key, (value, seqno.0)),
                        None => entries.remove(&key),
                    };
                }
                next.retain(|_, entries| !entries.is_empty());
                self.states.push(next);
                let (public, private) = write_set.encode_domains();
                let decoded = WriteSet::decode_domains(&public, &private).unwrap();
                self.backup.apply(seqno, &decoded).unwrap();
            }
            Err(error) => {
                assert!(error.is_conflict(), "unexpected {error}");
            }
        }
    }

    fn rollback(&mut self, back: u64) {
        let to = self.current().saturating_sub(back);
        let result = self.store.rollback(Seqno(to));
        if to < self.compacted {
            assert_eq!(
                result,
                Err(Error::RollbackBelowCompacted {
                    to: Seqno(to),
                    compacted: Seqno(self.compacted)
                })
            );
            return;
        }
        result.unwrap();
        self.backup.rollback(Seqno(to)).unwrap();
        if to < self.current() {
            self.epoch += 1;
        }
        self.states.truncate(usize::try_from(to + 1).unwrap());
    }

    fn check(&self) {
        self.store.check_invariants();
        self.backup.check_invariants();
        assert_eq!(self.store.current_seqno().0, self.current());
        assert_eq!(self.store.compacted_seqno().0, self.compacted);
        assert_eq!(dump(self.store.current()), self.states[self.states.len() - 1]);
        assert_eq!(dump(self.backup.current()), self.states[self.states.len() - 1]);
        // Rolling back to any seqno still in the history gives the model at that seqno
        // (on a copy, which shares the trees: the original must not change).
        let before = self.store.snapshot();
        for seqno in self.compacted..=self.current() {
            let mut copy = self.store.clone();
            copy.rollback(Seqno(seqno)).unwrap();
            copy.check_invariants();
            let index = usize::try_from(seqno).unwrap();
            assert_eq!(dump(copy.current()), self.states[index], "rollback to seqno {seqno}");
        }
        assert_eq!(dump(self.store.current()), self.states[self.states.len() - 1]);
        assert_eq!(dump(&before.state), self.states[self.states.len() - 1]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn interleaved_transactions_are_serializable(
        actions in proptest::collection::vec(action(), 1..80),
    ) {
        let mut harness = Harness::new();
        for action in actions {
            harness.step(action);
        }
        let (seqno, public, private) = harness.store.encode_snapshot();
        let restored = Store::restore_snapshot(seqno, &public, &private).unwrap();
        prop_assert_eq!(dump(restored.current()), dump(harness.store.current()));
        prop_assert_eq!(restored.current_seqno(), harness.store.current_seqno());
    }
}
