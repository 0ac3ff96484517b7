//! The KV's hot paths on a store of 100k keys: one-put transactions (in place, and with a
//! reader's snapshot forcing copy-on-write), point reads, range reads, and write-set
//! encoding.
#![allow(missing_docs, unused_crate_dependencies)]

use std::hint::black_box;
use std::ops::Bound;

use coco_kv::{MapName, Store, WriteSet};
use criterion::{Criterion, criterion_group, criterion_main};

const KEYS: u64 = 100_000;

fn key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn store_with_keys(map: &MapName) -> Store {
    let mut store = Store::new();
    let mut tx = store.begin();
    for index in 0..KEYS {
        tx.put(map, key(index), [7_u8; 32]);
    }
    store.commit(tx).expect("the first transaction cannot conflict");
    store.compact(store.current_seqno()).expect("compacting to current is allowed");
    store
}

fn bench(c: &mut Criterion) {
    let map = MapName::new("public:bench").expect("valid name");
    let mut store = store_with_keys(&map);
    let mut index = 0_u64;
    c.bench_function("begin_put_commit_100k", |b| {
        b.iter(|| {
            index = (index + 7919) % KEYS;
            let mut tx = store.begin();
            tx.put(&map, key(index), [1_u8; 32]);
            let outcome = store.commit(tx).expect("no concurrent writer");
            // The node compacts as the committed point advances; do the same so the
            // history stays small.
            store.compact(store.current_seqno()).expect("compacting to current is allowed");
            black_box(outcome);
        });
    });
    // The same while a reader holds a snapshot of the state the commit changes (as a
    // concurrent reader would): the commit must then copy the path to its key
    // (copy-on-write) rather than mutate in place, and the copy is freed with the reader.
    c.bench_function("begin_put_commit_100k_reader_held", |b| {
        b.iter(|| {
            index = (index + 7919) % KEYS;
            let reader = store.snapshot();
            let mut tx = store.begin();
            tx.put(&map, key(index), [2_u8; 32]);
            let outcome = store.commit(tx).expect("no concurrent writer");
            store.compact(store.current_seqno()).expect("compacting to current is allowed");
            black_box((outcome, reader));
        });
    });
    let snapshot = store.snapshot();
    c.bench_function("get_100k", |b| {
        b.iter(|| {
            index = (index + 7919) % KEYS;
            black_box(snapshot.get(&map, &key(index)));
        });
    });
    c.bench_function("tx_get_100k", |b| {
        b.iter(|| {
            index = (index + 7919) % KEYS;
            let mut tx = store.begin();
            black_box(tx.get(&map, &key(index)).map(<[u8]>::len));
        });
    });
    c.bench_function("range_100_of_100k", |b| {
        b.iter(|| {
            index = (index + 7919) % (KEYS - 100);
            let start = key(index);
            let items = snapshot.range(&map, Bound::Included(&start[..]), Bound::Unbounded, 100);
            black_box(items);
        });
    });
    let mut write_set = WriteSet::new();
    let private = MapName::new("private").expect("valid name");
    for index in 0..4 {
        write_set.put(&map, key(index).to_vec(), vec![1; 64]);
        write_set.put(&private, key(index).to_vec(), vec![2; 64]);
    }
    c.bench_function("encode_domains_8_writes", |b| {
        b.iter(|| black_box(black_box(&write_set).encode_domains()));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
