//! Ledger benchmarks: entry encoding (with AES-GCM) and group-committed appends.
#![allow(clippy::unwrap_used, reason = "benchmark code: a failed unwrap aborts the run")]

use std::cell::Cell;
use std::hint::black_box;

use coco_crypto::Aes256GcmKey;
use coco_ledger::{EntryParts, Ledger, encode_entry};
use coco_types::{Digest, Seqno, View};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const BATCH: u64 = 1000;

fn parts<'a>(seqno: u64, public: &'a [u8], private: &'a [u8]) -> EntryParts<'a> {
    EntryParts {
        view: View(1),
        seqno: Seqno(seqno),
        flags: 0,
        claims_digest: Digest::ZERO,
        commit_evidence_digest: Digest([7; 32]),
        public_maps: public,
        private_maps: private,
    }
}

fn encode(c: &mut Criterion) {
    let key = Aes256GcmKey::new(&[1u8; 32]).unwrap();
    let (public, private) = ([0x11u8; 100], [0x22u8; 100]);
    let mut group = c.benchmark_group("encode_entry");
    group.throughput(Throughput::Elements(1));
    group.bench_function("100B public + 100B private", |b| {
        b.iter(|| encode_entry(black_box(&parts(42, &public, &private)), &key).unwrap());
    });
    group.finish();
}

/// Appends and flushes batches of 1000 entries (one fdatasync per batch), signature last.
fn append_flush(c: &mut Criterion) {
    let key = Aes256GcmKey::new(&[1u8; 32]).unwrap();
    let (public, private) = ([0x11u8; 100], [0x22u8; 100]);
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), 5 << 20).unwrap();
    let mut group = c.benchmark_group("append_flush");
    group.throughput(Throughput::Elements(BATCH));
    group.sample_size(20);
    // The setup closure encodes the next batch; it may not borrow `ledger`, which the
    // measured closure mutates, so the next seqno is shared through a Cell.
    let next = Cell::new(ledger.next_seqno().0);
    group.bench_function("batch of 1000 entries", |b| {
        b.iter_batched(
            || {
                let first = next.get();
                (first..first + BATCH)
                    .map(|seqno| encode_entry(&parts(seqno, &public, &private), &key).unwrap())
                    .collect::<Vec<_>>()
            },
            |entries| {
                let first = next.get();
                for (seqno, raw) in (first..).zip(&entries) {
                    ledger.append(Seqno(seqno), raw, seqno == first + BATCH - 1).unwrap();
                }
                ledger.flush().unwrap();
                next.set(first + BATCH);
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, encode, append_flush);
criterion_main!(benches);
