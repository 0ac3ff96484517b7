use std::sync::Mutex;

use super::*;

fn map(text: &str) -> MapName {
    MapName::new(text).unwrap()
}

fn written(outcome: CommitOutcome) -> (Seqno, WriteSet) {
    match outcome {
        CommitOutcome::Written { seqno, write_set } => (seqno, write_set),
        CommitOutcome::ReadOnly => panic!("expected a write"),
    }
}

/// Commits `key = value` in map `m` and checks invariants.
fn put(store: &mut Store, key: &[u8], value: &[u8]) -> Seqno {
    let mut tx = store.begin();
    tx.put(&map("m"), key, value);
    let (seqno, _) = written(store.commit(tx).unwrap());
    store.check_invariants();
    seqno
}

fn conflict(result: Result<CommitOutcome>) -> Conflict {
    match result {
        Err(Error::Conflict(conflict)) => *conflict,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[test]
fn empty_store_starts_at_seqno_zero() {
    let store = Store::new();
    store.check_invariants();
    assert_eq!(store.current_seqno(), Seqno(0));
    assert_eq!(store.compacted_seqno(), Seqno(0));
    assert_eq!(store.snapshot().get(&map("m"), b"k"), None);
}

#[test]
fn commit_assigns_consecutive_seqnos_and_versions() {
    let mut store = Store::new();
    assert_eq!(put(&mut store, b"a", b"1"), Seqno(1));
    assert_eq!(put(&mut store, b"b", b"2"), Seqno(2));
    assert_eq!(put(&mut store, b"a", b"3"), Seqno(3));
    let snapshot = store.snapshot();
    assert_eq!(snapshot.seqno(), Seqno(3));
    assert_eq!(snapshot.get_versioned(&map("m"), b"a"), Some((&b"3"[..], Seqno(3))));
    assert_eq!(snapshot.get_versioned(&map("m"), b"b"), Some((&b"2"[..], Seqno(2))));
}

#[test]
fn commit_returns_the_write_set_and_read_only_gets_no_seqno() {
    let mut store = Store::new();
    let mut tx = store.begin();
    tx.put(&map("public:t"), b"k", b"v");
    tx.remove(&map("m"), b"x");
    let (seqno, write_set) = written(store.commit(tx).unwrap());
    assert_eq!(seqno, Seqno(1));
    let mut expected = WriteSet::new();
    expected.put(&map("public:t"), b"k".to_vec(), b"v".to_vec());
    expected.remove(&map("m"), b"x".to_vec());
    assert_eq!(write_set, expected);
    let mut tx = store.begin();
    assert_eq!(tx.get(&map("public:t"), b"k"), Some(&b"v"[..]));
    assert_eq!(store.commit(tx), Ok(CommitOutcome::ReadOnly));
    assert_eq!(store.current_seqno(), Seqno(1));
}

#[test]
fn reads_see_own_writes_and_removes() {
    let mut store = Store::new();
    put(&mut store, b"a", b"1");
    put(&mut store, b"b", b"2");
    let mut tx = store.begin();
    let m = map("m");
    tx.put(&m, b"c", b"3");
    tx.put(&m, b"a", b"9");
    tx.remove(&m, b"b");
    assert_eq!(tx.get_versioned(&m, b"a"), Some((&b"9"[..], None)));
    assert_eq!(tx.get(&m, b"b"), None);
    assert_eq!(tx.get_versioned(&m, b"c"), Some((&b"3"[..], None)));
    let all = tx.range(&m, Bound::Unbounded, Bound::Unbounded, 10);
    assert_eq!(all, vec![(b"a".to_vec(), b"9".to_vec()), (b"c".to_vec(), b"3".to_vec())]);
    // The snapshot it began at is unaffected.
    assert_eq!(store.snapshot().get(&m, b"b"), Some(&b"2"[..]));
}

#[test]
fn range_prefix_and_page_respect_bounds_and_limits() {
    let mut store = Store::new();
    for key in [&b"a1"[..], b"a2", b"a3", b"b1", &[b'a', 0xff]] {
        put(&mut store, key, b"v");
    }
    let m = map("m");
    let keys =
        |items: Vec<(Vec<u8>, Vec<u8>)>| items.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    let snapshot = store.snapshot();
    let (a2, b1): (&[u8], &[u8]) = (b"a2", b"b1");
    assert_eq!(keys(snapshot.range(&m, Bound::Included(a2), Bound::Excluded(b1), 10)).len(), 3);
    assert_eq!(
        keys(snapshot.range(&m, Bound::Excluded(a2), Bound::Included(b1), 2)),
        vec![b"a3".to_vec(), vec![b'a', 0xff]]
    );
    assert_eq!(keys(snapshot.prefix(&m, b"a", 10)).len(), 4);
    assert_eq!(keys(snapshot.prefix(&m, b"b", 10)), vec![b"b1".to_vec()]);
    assert!(snapshot.range(&m, Bound::Included(b1), Bound::Excluded(a2), 10).is_empty());
    let mut tx = store.begin();
    assert_eq!(keys(tx.prefix(&m, b"a", 2)), vec![b"a1".to_vec(), b"a2".to_vec()]);
    assert!(tx.range(&m, Bound::Unbounded, Bound::Unbounded, 0).is_empty());
    assert!(tx.range(&m, Bound::Included(b1), Bound::Excluded(a2), 5).is_empty());
    assert!(tx.range(&map("other"), Bound::Unbounded, Bound::Unbounded, 5).is_empty());
}

#[test]
fn pages_cover_every_key_once() {
    let mut store = Store::new();
    for key in 0_u8..7 {
        put(&mut store, &[key], b"v");
    }
    let m = map("m");
    for limit in [0, 1, 2, 3, 7, 8] {
        let mut tx = store.begin();
        let (mut seen, mut after) = (Vec::new(), None);
        loop {
            let page = tx.page(&m, after.as_deref(), limit);
            assert_eq!(page, store.snapshot().page(&m, after.as_deref(), limit));
            seen.extend(page.items.into_iter().map(|(k, _)| k[0]));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, (0..7).collect::<Vec<_>>(), "limit {limit}");
    }
}

#[test]
fn point_read_conflicts_when_the_key_changes_appears_or_vanishes() {
    let mut store = Store::new();
    put(&mut store, b"a", b"1");
    let m = map("m");
    // Changed.
    let mut tx = store.begin();
    tx.get(&m, b"a");
    tx.put(&m, b"z", b"");
    put(&mut store, b"a", b"2");
    let expected = Conflict::Key {
        map: m.clone(),
        key: b"a".to_vec(),
        read: Some(Seqno(1)),
        current: Some(Seqno(2)),
    };
    assert_eq!(conflict(store.commit(tx)), expected);
    // Appeared.
    let mut tx = store.begin();
    assert_eq!(tx.get(&m, b"new"), None);
    put(&mut store, b"new", b"x");
    assert!(matches!(conflict(store.commit(tx)), Conflict::Key { read: None, .. }));
    // Vanished.
    let mut tx = store.begin();
    tx.get(&m, b"new");
    let mut remover = store.begin();
    remover.remove(&m, b"new");
    store.commit(remover).unwrap();
    assert!(matches!(conflict(store.commit(tx)), Conflict::Key { current: None, .. }));
    assert_eq!(store.current_seqno(), Seqno(4), "refused commits change nothing");
    store.check_invariants();
}

#[test]
fn unrelated_writes_and_blind_writes_do_not_conflict() {
    let mut store = Store::new();
    put(&mut store, b"a", b"1");
    let m = map("m");
    let mut reader = store.begin();
    reader.get(&m, b"a");
    reader.get(&map("other"), b"a");
    reader.put(&m, b"r", b"");
    let mut blind = store.begin();
    blind.put(&m, b"a", b"blind");
    put(&mut store, b"b", b"2");
    assert!(store.commit(reader).is_ok());
    // A blind write (no read) never conflicts, even on a key changed since.
    assert!(store.commit(blind).is_ok());
    // Reading one's own write records nothing.
    let mut own = store.begin();
    own.put(&m, b"a", b"own");
    own.get(&m, b"a");
    put(&mut store, b"a", b"later");
    assert!(store.commit(own).is_ok());
}

#[test]
fn range_reads_conflict_only_on_changes_inside_the_observed_range() {
    let mut store = Store::new();
    for key in [b"a", b"c", b"e", b"g"] {
        put(&mut store, key, b"v");
    }
    let m = map("m");
    let (b, f): (&[u8], &[u8]) = (b"b", b"f");
    let begin_range = |store: &Store| {
        let mut tx = store.begin();
        tx.range(&m, Bound::Included(b), Bound::Excluded(f), 10);
        tx.put(&m, b"out", b"");
        tx
    };
    // Outside the range: fine.
    let tx = begin_range(&store);
    put(&mut store, b"a", b"2");
    put(&mut store, b"z", b"2");
    assert!(store.commit(tx).is_ok());
    // An insertion inside: conflict (phantom).
    let tx = begin_range(&store);
    put(&mut store, b"d", b"new");
    assert!(matches!(conflict(store.commit(tx)), Conflict::Range { .. }));
    // A removal inside: conflict.
    let tx = begin_range(&store);
    let mut remover = store.begin();
    remover.remove(&m, b"c");
    store.commit(remover).unwrap();
    assert!(matches!(conflict(store.commit(tx)), Conflict::Range { .. }));
    // Past the last key returned when the limit was reached: fine.
    let mut tx = store.begin();
    assert_eq!(tx.range(&m, Bound::Unbounded, Bound::Unbounded, 1).len(), 1);
    tx.put(&m, b"out", b"");
    put(&mut store, b"y", b"past the limit");
    assert!(store.commit(tx).is_ok());
}

#[test]
fn apply_requires_the_next_seqno() {
    let mut store = Store::new();
    let mut write_set = WriteSet::new();
    write_set.put(&map("m"), b"k".to_vec(), b"v".to_vec());
    assert_eq!(
        store.apply(Seqno(2), &write_set),
        Err(Error::SeqnoNotNext { got: Seqno(2), expected: Seqno(1) })
    );
    assert_eq!(
        store.apply(Seqno(0), &write_set),
        Err(Error::SeqnoNotNext { got: Seqno(0), expected: Seqno(1) })
    );
    store.apply(Seqno(1), &write_set).unwrap();
    store.apply(Seqno(2), &WriteSet::new()).unwrap();
    store.check_invariants();
    assert_eq!(store.current_seqno(), Seqno(2));
    assert_eq!(store.snapshot().get_versioned(&map("m"), b"k"), Some((&b"v"[..], Seqno(1))));
}

#[test]
fn rollback_restores_earlier_states_and_refuses_outside_the_history() {
    let mut store = Store::new();
    put(&mut store, b"a", b"1");
    put(&mut store, b"a", b"2");
    put(&mut store, b"b", b"3");
    store.rollback(Seqno(3)).unwrap();
    assert_eq!(
        store.rollback(Seqno(4)),
        Err(Error::RollbackAboveCurrent { to: Seqno(4), current: Seqno(3) })
    );
    store.rollback(Seqno(1)).unwrap();
    store.check_invariants();
    assert_eq!(store.current_seqno(), Seqno(1));
    assert_eq!(store.snapshot().get(&map("m"), b"a"), Some(&b"1"[..]));
    assert_eq!(store.snapshot().get(&map("m"), b"b"), None);
    assert_eq!(put(&mut store, b"c", b"4"), Seqno(2), "seqnos are reused after rollback");
    store.compact(Seqno(2)).unwrap();
    assert_eq!(
        store.rollback(Seqno(1)),
        Err(Error::RollbackBelowCompacted { to: Seqno(1), compacted: Seqno(2) })
    );
    store.rollback(Seqno(2)).unwrap();
    store.rollback(Seqno(0)).unwrap_err();
}

#[test]
fn transactions_begun_before_a_rollback_conflict() {
    let mut store = Store::new();
    put(&mut store, b"a", b"1");
    put(&mut store, b"a", b"2");
    let mut tx = store.begin();
    tx.get(&map("m"), b"a");
    tx.put(&map("m"), b"b", b"");
    store.rollback(Seqno(1)).unwrap();
    put(&mut store, b"a", b"other 2");
    assert_eq!(conflict(store.commit(tx)), Conflict::RolledBack { read_seqno: Seqno(2) });
}

#[test]
fn an_exclusive_transaction_commits_only_if_nothing_committed_since_it_began() {
    let mut store = Store::new();
    put(&mut store, b"a", b"1");
    let mut tx = store.begin_exclusive();
    assert_eq!(tx.get(&map("m"), b"a"), Some(&b"1"[..]));
    tx.range(&map("m"), Bound::Unbounded, Bound::Unbounded, 10);
    assert!(tx.reads.points.is_empty() && tx.reads.ranges.is_empty(), "records no reads");
    tx.put(&map("m"), b"a", b"2");
    let (seqno, _) = written(store.commit(tx).unwrap());
    assert_eq!(seqno, Seqno(2));
    // Something committed after it began: refused, though it read nothing that changed.
    let mut late = store.begin_exclusive();
    late.put(&map("m"), b"b", b"x");
    put(&mut store, b"c", b"3");
    let refused = conflict(store.commit(late));
    assert_eq!(refused, Conflict::NotExclusive { read_seqno: Seqno(2), current: Seqno(3) });
    assert_eq!(store.begin().get(&map("m"), b"b"), None, "the store is unchanged");
    // Begun before a rollback to the same seqno: refused as rolled back.
    let mut stale = store.begin_exclusive();
    stale.put(&map("m"), b"b", b"x");
    store.rollback(Seqno(2)).unwrap();
    put(&mut store, b"c", b"other 3");
    store.rollback(Seqno(2)).unwrap();
    assert_eq!(conflict(store.commit(stale)), Conflict::RolledBack { read_seqno: Seqno(3) });
}

#[test]
fn compact_is_monotone_and_bounded_by_current() {
    let mut store = Store::new();
    put(&mut store, b"a", b"1");
    put(&mut store, b"a", b"2");
    assert_eq!(
        store.compact(Seqno(3)),
        Err(Error::CompactAboveCurrent { to: Seqno(3), current: Seqno(2) })
    );
    store.compact(Seqno(2)).unwrap();
    store.compact(Seqno(1)).unwrap();
    store.check_invariants();
    assert_eq!(store.compacted_seqno(), Seqno(2));
    assert_eq!(store.current_seqno(), Seqno(2));
}

#[test]
fn history_full_refuses_writes_until_compaction() {
    let mut store = Store::new();
    store.set_history_max(2);
    put(&mut store, b"a", b"1");
    put(&mut store, b"a", b"2");
    let mut tx = store.begin();
    tx.put(&map("m"), b"a", b"3");
    assert_eq!(store.commit(tx.clone()), Err(Error::HistoryFull { max: 2 }));
    let mut read_only = store.begin();
    read_only.get(&map("m"), b"a");
    assert_eq!(store.commit(read_only), Ok(CommitOutcome::ReadOnly));
    store.compact(Seqno(1)).unwrap();
    assert!(store.commit(tx).is_ok());
    store.check_invariants();
}

#[test]
fn run_tx_retries_on_conflict_up_to_the_bound() {
    let store = Mutex::new(Store::new());
    let m = map("m");
    // Each execution reads "a", then a concurrent writer changes it before commit.
    let mut executions = 0;
    let result: Result<((), CommitOutcome)> = run_tx(&store, 2, |tx| {
        executions += 1;
        tx.get(&m, b"a");
        tx.put(&m, b"b", b"");
        let mut other = store.lock().unwrap();
        let mut concurrent = other.begin();
        concurrent.put(&m, b"a", vec![executions]);
        other.commit(concurrent)?;
        Ok(())
    });
    assert_eq!(result, Err(Error::RetriesExhausted { attempts: 3 }));
    assert_eq!(executions, 3);
    // Conflicting once, then succeeding.
    let mut executions = 0;
    let (value, outcome) = run_tx(&store, 2, |tx| {
        executions += 1;
        tx.get(&m, b"a");
        tx.put(&m, b"b", b"");
        if executions == 1 {
            let mut other = store.lock().unwrap();
            let mut concurrent = other.begin();
            concurrent.put(&m, b"a", b"x");
            other.commit(concurrent)?;
        }
        Ok::<_, Error>(executions)
    })
    .unwrap();
    assert_eq!(value, 2);
    assert_eq!(written(outcome).0, Seqno(5));
    // A handler error commits nothing.
    let failed: Result<((), CommitOutcome)> = run_tx(&store, 2, |tx| {
        tx.put(&m, b"c", b"");
        Err(Error::HistoryFull { max: 0 })
    });
    assert!(failed.is_err());
    assert_eq!(store.lock().unwrap().current_seqno(), Seqno(5));
}

/// Every (key, value, version) of map `m` in a snapshot, in key order.
fn contents(snapshot: &Snapshot, name: &str) -> Vec<(Vec<u8>, Vec<u8>, u64)> {
    let items = snapshot.range(&map(name), Bound::Unbounded, Bound::Unbounded, usize::MAX);
    items
        .into_iter()
        .map(|(key, value)| {
            let (_, version) = snapshot.get_versioned(&map(name), &key).unwrap();
            (key, value, version.0)
        })
        .collect()
}

#[test]
fn snapshots_taken_before_commits_and_rollbacks_keep_their_state() {
    let mut store = Store::new();
    for index in 0_u8..200 {
        put(&mut store, &[index], b"old"); // Enough keys for a multi-level tree.
    }
    let old = store.snapshot();
    let mut reader = store.begin(); // A transaction's own snapshot, held across commits.
    let expected = contents(&old, "m");
    assert_eq!(expected.len(), 200);
    put(&mut store, &[7], b"new");
    let mut tx = store.begin();
    tx.remove(&map("m"), [8]);
    tx.put(&map("m"), b"\xff", b"added");
    tx.put(&map("other"), b"k", b"v");
    store.commit(tx).unwrap();
    // The store changed in place where nothing shared its trees, and by copying where
    // the snapshots do: they still read exactly the old state.
    assert_eq!(contents(&old, "m"), expected);
    assert_eq!(old.get(&map("m"), &[7]), Some(&b"old"[..]));
    assert_eq!(old.get(&map("other"), b"k"), None);
    assert_eq!(reader.get(&map("m"), &[8]), Some(&b"old"[..]));
    assert_eq!(reader.range(&map("m"), Bound::Unbounded, Bound::Unbounded, 500).len(), 200);
    let now = store.snapshot();
    assert_eq!(now.get_versioned(&map("m"), &[7]), Some((&b"new"[..], Seqno(201))));
    assert_eq!(now.get(&map("m"), &[8]), None);
    // A rollback mutates the state in place too; the newer snapshot keeps its state.
    let newer = contents(&now, "m");
    store.rollback(Seqno(100)).unwrap();
    store.check_invariants();
    assert_eq!(contents(&now, "m"), newer);
    assert_eq!(now.get(&map("other"), b"k"), Some(&b"v"[..]));
    assert_eq!(contents(&old, "m"), expected);
    assert_eq!(store.snapshot().get(&map("m"), &[150]), None);
    assert_eq!(store.snapshot().get(&map("other"), b"k"), None);
    // The reader began before the commits and the rollback: refused.
    reader.put(&map("m"), b"x", b"");
    assert!(matches!(conflict(store.commit(reader)), Conflict::RolledBack { .. }));
}

#[test]
fn rollback_across_seqnos_touching_the_same_key_restores_each_version() {
    let mut store = Store::new();
    let (m, n) = (map("m"), map("n"));
    put(&mut store, b"k", b"1"); // 1
    put(&mut store, b"k", b"2"); // 2
    let mut tx = store.begin(); // 3: remove k, emptying and so removing map m
    tx.remove(&m, b"k");
    tx.put(&n, b"j", b"n3");
    store.commit(tx).unwrap();
    put(&mut store, b"k", b"4"); // 4: recreates map m
    let mut tx = store.begin(); // 5: k twice in one transaction, plus a no-op remove
    tx.put(&m, b"k", b"5a");
    tx.put(&m, b"k", b"5");
    tx.remove(&m, b"absent");
    tx.remove(&n, b"absent");
    store.commit(tx).unwrap();
    store.compact(Seqno(1)).unwrap();
    // (seqno, m[k] and its version, m's last write, n's last write)
    type Expected = (u64, Option<(&'static [u8], u64)>, Option<u64>, Option<u64>);
    let expected: [Expected; 5] = [
        (5, Some((b"5", 5)), Some(5), Some(5)),
        (4, Some((b"4", 4)), Some(4), Some(3)),
        (3, None, None, Some(3)),
        (2, Some((b"2", 2)), Some(2), None),
        (1, Some((b"1", 1)), Some(1), None),
    ];
    for (seqno, value, m_last, n_last) in expected {
        store.rollback(Seqno(seqno)).unwrap();
        store.check_invariants();
        assert_eq!(store.current_seqno(), Seqno(seqno));
        let snapshot = store.snapshot();
        let got = snapshot.get_versioned(&m, b"k").map(|(value, version)| (value, version.0));
        assert_eq!(got, value, "m[k] at seqno {seqno}");
        let last_write = |name: &MapName| store.current().map(name).map(|map| map.last_write.0);
        assert_eq!(last_write(&m), m_last, "m's last write at seqno {seqno}");
        assert_eq!(last_write(&n), n_last, "n's last write at seqno {seqno}");
    }
    assert_eq!(
        store.rollback(Seqno(0)),
        Err(Error::RollbackBelowCompacted { to: Seqno(0), compacted: Seqno(1) })
    );
    // After rolling back, seqnos are reused and the history still works.
    assert_eq!(put(&mut store, b"k", b"again"), Seqno(2));
    store.rollback(Seqno(1)).unwrap();
    assert_eq!(store.snapshot().get(&m, b"k"), Some(&b"1"[..]));
}

#[test]
fn replace_swaps_contents_and_refuses_transactions_begun_before() {
    let mut store = Store::new();
    put(&mut store, b"k", b"old");
    let stale = store.begin();
    let mut rebuilt = Store::new();
    put(&mut rebuilt, b"k", b"new");
    put(&mut rebuilt, b"j", b"new");
    store.replace(rebuilt);
    store.check_invariants();
    assert_eq!(store.current_seqno(), Seqno(2));
    assert_eq!(store.snapshot().get(&map("m"), b"k"), Some(&b"new"[..]));
    let mut stale = stale;
    stale.put(&map("m"), b"x", b"lost");
    conflict(store.commit(stale));
}

#[test]
fn a_map_view_is_the_map_until_that_map_is_written() {
    let mut store = Store::new();
    let absent = store.map_view(&map("m"));
    assert!(store.map_is(&map("m"), &absent), "an absent map is its empty view");
    put(&mut store, b"k", b"v");
    assert!(!store.map_is(&map("m"), &absent));

    let view = store.map_view(&map("m"));
    assert!(store.map_is(&map("m"), &view));
    let mut tx = store.begin();
    tx.put(&map("other"), b"k", b"v");
    written(store.commit(tx).unwrap());
    assert!(store.map_is(&map("m"), &view), "writes to other maps leave it alone");
    put(&mut store, b"k", b"w");
    assert!(!store.map_is(&map("m"), &view));
    assert_eq!(view.get(b"k"), Some(&b"v"[..]), "the view keeps what it saw");
}
