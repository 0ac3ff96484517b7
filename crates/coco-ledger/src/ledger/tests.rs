use super::*;
use crate::entry::{EntryParts, encode_entry};
use coco_crypto::Aes256GcmKey;
use coco_types::{Digest, View};

/// Bytes of each entry made by `entry` (8 + 36 + 81 + 20 public + 10 private).
const ENTRY_LEN: usize = 155;
/// Chunk size that closes a chunk at the first signature after the third entry.
const CHUNK_BYTES: u64 = 400;

fn entry_with(seqno: u64, flags: u8, salt: u8) -> Vec<u8> {
    let key = Aes256GcmKey::new(&[5u8; 32]).unwrap();
    let public = [salt; 20];
    let private = [salt ^ 0xff; 10];
    let parts = EntryParts {
        view: View(2),
        seqno: Seqno(seqno),
        flags,
        claims_digest: Digest::ZERO,
        commit_evidence_digest: Digest([seqno.to_le_bytes()[0]; 32]),
        public_maps: &public,
        private_maps: &private,
    };
    let raw = encode_entry(&parts, &key).unwrap();
    assert_eq!(raw.len(), ENTRY_LEN);
    raw
}

fn entry(seqno: u64) -> Vec<u8> {
    entry_with(seqno, 0, seqno.to_le_bytes()[0])
}

/// Appends `range`, with a signature at every multiple of 4.
fn append_range(ledger: &mut Ledger, range: std::ops::RangeInclusive<u64>) {
    for seqno in range {
        ledger.append(Seqno(seqno), &entry(seqno), seqno % 4 == 0).unwrap();
    }
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|item| item.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn all_entries(ledger: &Ledger) -> Vec<(Seqno, Vec<u8>)> {
    ledger.entries(ledger.first_seqno()).collect::<Result<_>>().unwrap()
}

fn expect_corrupt(result: Result<Ledger>, file_name: &str) -> (u64, String) {
    match result {
        Err(Error::Corrupt { file, offset, reason }) => {
            assert_eq!(file.file_name().unwrap().to_str().unwrap(), file_name, "{reason}");
            (offset, reason)
        }
        Err(other) => panic!("expected Corrupt for {file_name}, got {other}"),
        Ok(_) => panic!("expected Corrupt for {file_name}, the ledger opened"),
    }
}

#[test]
fn chunks_end_on_signatures_with_exact_names_and_positions() {
    tracing::info!("a chunk past chunk_bytes closes only at the next signature");
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), CHUNK_BYTES).unwrap();
    append_range(&mut ledger, 1..=10);
    ledger.flush().unwrap();
    assert_eq!(file_names(dir.path()), ["ledger_1-4", "ledger_5-8", "ledger_9"]);
    assert_eq!(ledger.last_seqno(), Seqno(10));
    let states: Vec<_> =
        ledger.chunks().iter().map(|chunk| (chunk.start.0, chunk.end.0, chunk.state)).collect();
    assert_eq!(
        states,
        [
            (1, 4, ChunkState::Complete),
            (5, 8, ChunkState::Complete),
            (9, 10, ChunkState::InProgress)
        ]
    );

    tracing::info!("the complete chunk is header, entries, then u32 positions");
    let bytes = fs::read(dir.path().join("ledger_1-4")).unwrap();
    let table_offset = 8 + 4 * ENTRY_LEN;
    assert_eq!(bytes.len(), table_offset + 16);
    assert_eq!(&bytes[..8], &(table_offset as u64).to_le_bytes());
    let positions: Vec<u32> = bytes[table_offset..]
        .chunks(4)
        .map(|p| u32::from_le_bytes(p.try_into().unwrap()))
        .collect();
    assert_eq!(positions, [8, 163, 318, 473]);
    assert_eq!(&bytes[8..8 + ENTRY_LEN], &entry(1)[..]);

    let in_progress = fs::read(dir.path().join("ledger_9")).unwrap();
    assert_eq!(&in_progress[..8], &[0u8; 8]);
    assert_eq!(in_progress.len(), 8 + 2 * ENTRY_LEN);
}

#[test]
fn force_flags_end_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), 1 << 20).unwrap();
    ledger.append(Seqno(1), &entry(1), false).unwrap();
    ledger.append(Seqno(2), &entry_with(2, FORCE_LEDGER_CHUNK_AFTER, 2), true).unwrap();
    ledger.append(Seqno(3), &entry(3), true).unwrap();
    ledger.append(Seqno(4), &entry_with(4, FORCE_LEDGER_CHUNK_BEFORE, 4), false).unwrap();
    ledger.flush().unwrap();
    assert_eq!(file_names(dir.path()), ["ledger_1-2", "ledger_3-3", "ledger_4"]);

    tracing::info!("flags that would end a chunk on a non-signature are refused, changing nothing");
    let after = ledger.append(Seqno(5), &entry_with(5, FORCE_LEDGER_CHUNK_AFTER, 5), false);
    assert!(matches!(after, Err(Error::ChunkEndNotSignature { seqno: 5 })));
    let before = ledger.append(Seqno(5), &entry_with(5, FORCE_LEDGER_CHUNK_BEFORE, 5), false);
    assert!(matches!(before, Err(Error::ChunkEndNotSignature { seqno: 4 })));
    assert_eq!(ledger.last_seqno(), Seqno(4));
    ledger.append(Seqno(5), &entry(5), false).unwrap();
}

#[test]
fn append_refuses_caller_mistakes_without_changes() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), CHUNK_BYTES).unwrap();
    assert!(matches!(
        ledger.append(Seqno(2), &entry(2), false),
        Err(Error::NotContiguous { expected: 1, got: 2 })
    ));
    assert!(matches!(
        ledger.append(Seqno(1), &entry(2), false),
        Err(Error::WrongEntry { seqno: 1, entry_seqno: 2 })
    ));
    assert!(matches!(
        ledger.append(Seqno(1), &entry(1)[..50], false),
        Err(Error::Truncated { .. })
    ));
    assert_eq!(ledger.last_seqno(), Seqno(0));
    assert!(file_names(dir.path()).is_empty());
    ledger.append(Seqno(1), &entry(1), false).unwrap();
    assert!(matches!(
        ledger.commit(Seqno(2)),
        Err(Error::CommitBeyondLast { committed: 2, last: 1 })
    ));
}

#[test]
fn reads_come_from_the_buffer_or_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), CHUNK_BYTES).unwrap();
    append_range(&mut ledger, 1..=6);
    for seqno in 1..=6 {
        assert_eq!(
            ledger.read_entry(Seqno(seqno)).unwrap(),
            entry(seqno),
            "seqno {seqno} before flush"
        );
    }
    ledger.flush().unwrap();
    append_range(&mut ledger, 7..=7);
    for seqno in 1..=7 {
        assert_eq!(ledger.read_entry(Seqno(seqno)).unwrap(), entry(seqno), "seqno {seqno}");
    }
    assert!(matches!(ledger.read_entry(Seqno(0)), Err(Error::NotFound { seqno: 0 })));
    assert!(matches!(ledger.read_entry(Seqno(8)), Err(Error::NotFound { seqno: 8 })));
}

#[test]
fn reopen_after_flush_yields_the_same_entries_and_continues() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), CHUNK_BYTES).unwrap();
    append_range(&mut ledger, 1..=10);
    ledger.commit(Seqno(5)).unwrap();
    ledger.flush().unwrap();
    let before = all_entries(&ledger);
    let chunks = ledger.chunks();
    drop(ledger);

    let mut ledger = Ledger::open(dir.path(), CHUNK_BYTES).unwrap();
    assert_eq!(all_entries(&ledger), before);
    assert_eq!(ledger.chunks(), chunks);
    assert_eq!(ledger.committed_seqno(), Seqno(4), "known from the .committed name");
    append_range(&mut ledger, 11..=12);
    ledger.flush().unwrap();
    assert_eq!(file_names(dir.path()), ["ledger_1-4.committed", "ledger_5-8", "ledger_9-12"]);
    drop(ledger);
    let ledger = Ledger::open(dir.path(), CHUNK_BYTES).unwrap();
    assert_eq!(ledger.entries(Seqno(11)).count(), 2);
    assert_eq!(ledger.last_seqno(), Seqno(12));
}

#[test]
fn commit_renames_complete_chunks_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), CHUNK_BYTES).unwrap();
    append_range(&mut ledger, 1..=10);
    ledger.commit(Seqno(7)).unwrap();
    assert_eq!(file_names(dir.path()), ["ledger_1-4.committed", "ledger_5-8", "ledger_9"]);
    ledger.commit(Seqno(3)).unwrap();
    ledger.commit(Seqno(10)).unwrap();
    assert_eq!(
        file_names(dir.path()),
        ["ledger_1-4.committed", "ledger_5-8.committed", "ledger_9"]
    );
    assert_eq!(ledger.read_entry(Seqno(6)).unwrap(), entry(6));
}

/// Writes entries 1..=3 (no signature, one in-progress chunk) and returns the file bytes.
fn in_progress_ledger(dir: &Path) -> Vec<u8> {
    let mut ledger = Ledger::open(dir, CHUNK_BYTES).unwrap();
    append_range(&mut ledger, 1..=3);
    ledger.flush().unwrap();
    fs::read(dir.join("ledger_1")).unwrap()
}

#[test]
fn a_torn_tail_is_cut_back_to_the_last_whole_entry() {
    let source = tempfile::tempdir().unwrap();
    let bytes = in_progress_ledger(source.path());
    let whole = bytes.len() - ENTRY_LEN;
    for cut in whole..bytes.len() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("ledger_1"), &bytes[..cut]).unwrap();
        let mut ledger = Ledger::open(dir.path(), CHUNK_BYTES).unwrap();
        assert_eq!(ledger.last_seqno(), Seqno(2), "cut at {cut}");
        assert_eq!(fs::metadata(dir.path().join("ledger_1")).unwrap().len(), whole as u64);
        assert_eq!(all_entries(&ledger), [(Seqno(1), entry(1)), (Seqno(2), entry(2))]);
        if cut == whole + 1 {
            ledger.append(Seqno(3), &entry(3), false).unwrap();
            ledger.flush().unwrap();
            assert_eq!(fs::read(dir.path().join("ledger_1")).unwrap(), bytes);
        }
    }
    tracing::info!("a file cut inside its own header keeps the chunk, empty");
    for cut in 0..8 {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("ledger_1"), &bytes[..cut]).unwrap();
        let ledger = Ledger::open(dir.path(), CHUNK_BYTES).unwrap();
        assert_eq!(ledger.last_seqno(), Seqno(0));
        assert_eq!(fs::read(dir.path().join("ledger_1")).unwrap(), [0u8; 8]);
    }
}

#[test]
fn unwritten_zeros_and_a_partial_positions_table_are_torn_tails() {
    let source = tempfile::tempdir().unwrap();
    let bytes = in_progress_ledger(source.path());
    let table: Vec<u8> = [8u32, 163, 318].iter().flat_map(|p| p.to_le_bytes()).collect();
    let mut header_patched = bytes.clone();
    header_patched[..8].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
    let tails: [(&str, Vec<u8>, Vec<u8>); 4] = [
        ("zeros", bytes.clone(), vec![0; 300]),
        ("partial table", bytes.clone(), table[..9].to_vec()),
        ("whole table, header not patched", bytes.clone(), table.clone()),
        ("patched header, partial table", header_patched, table[..10].to_vec()),
    ];
    for (what, head, tail) in tails {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("ledger_1"), [head, tail].concat()).unwrap();
        let ledger = Ledger::open(dir.path(), CHUNK_BYTES).unwrap();
        assert_eq!(ledger.last_seqno(), Seqno(3), "{what}");
        assert_eq!(fs::read(dir.path().join("ledger_1")).unwrap(), bytes, "{what}");
    }
}

#[test]
fn a_completed_chunk_whose_rename_was_lost_is_renamed() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), CHUNK_BYTES).unwrap();
    append_range(&mut ledger, 1..=4);
    drop(ledger);
    fs::rename(dir.path().join("ledger_1-4"), dir.path().join("ledger_1")).unwrap();
    let ledger = Ledger::open(dir.path(), CHUNK_BYTES).unwrap();
    assert_eq!(file_names(dir.path()), ["ledger_1-4"]);
    assert_eq!(ledger.last_seqno(), Seqno(4));
}

#[test]
fn corruption_other_than_a_torn_tail_names_the_file_and_offset() {
    let source = tempfile::tempdir().unwrap();
    let bytes = in_progress_ledger(source.path());
    let in_middle = |at: usize, value: u8| {
        let dir = tempfile::tempdir().unwrap();
        let mut copy = bytes.clone();
        copy[at] = value;
        fs::write(dir.path().join("ledger_1"), copy).unwrap();
        expect_corrupt(Ledger::open(dir.path(), CHUNK_BYTES), "ledger_1").0
    };
    assert_eq!(in_middle(8 + ENTRY_LEN, 7), 8 + ENTRY_LEN as u64, "bad version of entry 2");
    assert_eq!(in_middle(8 + 45, 9), 8 + 45, "public seqno of entry 1");
    assert_eq!(
        in_middle(8 + 2 * ENTRY_LEN + 1, 0x10),
        8 + 2 * ENTRY_LEN as u64 + 1,
        "flags of entry 3"
    );
}

#[test]
fn a_flipped_byte_in_a_committed_positions_table_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), CHUNK_BYTES).unwrap();
    append_range(&mut ledger, 1..=8);
    ledger.commit(Seqno(8)).unwrap();
    drop(ledger);
    let path = dir.path().join("ledger_5-8.committed");
    let clean = fs::read(&path).unwrap();
    let table_offset = 8 + 4 * ENTRY_LEN;
    for at in table_offset..clean.len() {
        let mut copy = clean.clone();
        copy[at] ^= 0x01;
        fs::write(&path, &copy).unwrap();
        let (offset, reason) =
            expect_corrupt(Ledger::open(dir.path(), CHUNK_BYTES), "ledger_5-8.committed");
        assert_eq!(offset, (table_offset + (at - table_offset) / 4 * 4) as u64, "{reason}");
    }
    tracing::info!("a flip in the header offset or an entry is refused too");
    for at in [0, 3, 8, 8 + 44, 8 + ENTRY_LEN + 2] {
        let mut copy = clean.clone();
        copy[at] ^= 0x40;
        fs::write(&path, &copy).unwrap();
        expect_corrupt(Ledger::open(dir.path(), CHUNK_BYTES), "ledger_5-8.committed");
    }
    fs::write(&path, &clean).unwrap();
    Ledger::open(dir.path(), CHUNK_BYTES).unwrap();
}

#[test]
fn bad_names_gaps_and_misplaced_chunks_are_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), CHUNK_BYTES).unwrap();
    append_range(&mut ledger, 1..=12);
    ledger.flush().unwrap();
    drop(ledger);
    let path = |name: &str| dir.path().join(name);

    fs::rename(path("ledger_5-8"), path("ledger_6-8")).unwrap();
    expect_corrupt(Ledger::open(dir.path(), CHUNK_BYTES), "ledger_6-8");
    fs::rename(path("ledger_6-8"), path("ledger_5-8")).unwrap();

    fs::rename(path("ledger_5-8"), path("ledger_5-8.committed")).unwrap();
    expect_corrupt(Ledger::open(dir.path(), CHUNK_BYTES), "ledger_5-8.committed");
    fs::rename(path("ledger_5-8.committed"), path("ledger_5-8")).unwrap();

    fs::write(path("ledger_x"), b"").unwrap();
    expect_corrupt(Ledger::open(dir.path(), CHUNK_BYTES), "ledger_x");
    fs::remove_file(path("ledger_x")).unwrap();

    fs::rename(path("ledger_1-4"), path("ledger_1")).unwrap();
    fs::write(path("ledger_1"), [0u8; 8]).unwrap();
    expect_corrupt(Ledger::open(dir.path(), CHUNK_BYTES), "ledger_5-8");
}

#[test]
fn truncate_then_append_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), CHUNK_BYTES).unwrap();
    append_range(&mut ledger, 1..=10);
    ledger.commit(Seqno(4)).unwrap();

    tracing::info!("into a complete chunk: later files go, the chunk reopens in progress");
    ledger.truncate(Seqno(6)).unwrap();
    assert_eq!(file_names(dir.path()), ["ledger_1-4.committed", "ledger_5"]);
    assert_eq!(ledger.last_seqno(), Seqno(6));
    ledger.append(Seqno(7), &entry_with(7, 0, 0x77), false).unwrap();
    ledger.append(Seqno(8), &entry(8), true).unwrap();
    assert_eq!(file_names(dir.path()), ["ledger_1-4.committed", "ledger_5-8"]);
    assert_eq!(ledger.read_entry(Seqno(7)).unwrap(), entry_with(7, 0, 0x77));

    tracing::info!("inside the in-progress chunk, and to the end of a complete chunk");
    append_range(&mut ledger, 9..=11);
    ledger.truncate(Seqno(10)).unwrap();
    assert_eq!(ledger.read_entry(Seqno(10)).unwrap(), entry(10));
    ledger.truncate(Seqno(8)).unwrap();
    assert_eq!(file_names(dir.path()), ["ledger_1-4.committed", "ledger_5-8"]);
    append_range(&mut ledger, 9..=9);
    ledger.flush().unwrap();

    tracing::info!("committed entries are never truncated");
    assert!(matches!(
        ledger.truncate(Seqno(3)),
        Err(Error::TruncateCommitted { to: 3, committed: 4 })
    ));
    ledger.commit(Seqno(6)).unwrap();
    assert!(matches!(
        ledger.truncate(Seqno(5)),
        Err(Error::TruncateCommitted { to: 5, committed: 6 })
    ));
    let expected = all_entries(&ledger);
    drop(ledger);
    let ledger = Ledger::open(dir.path(), CHUNK_BYTES).unwrap();
    assert_eq!(all_entries(&ledger), expected);
    assert_eq!(expected[6], (Seqno(7), entry_with(7, 0, 0x77)));
}

#[test]
fn start_after_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), CHUNK_BYTES).unwrap();
    ledger.start_after(Seqno(100)).unwrap();
    assert_eq!(ledger.next_seqno(), Seqno(101));
    ledger.append(Seqno(101), &entry(101), false).unwrap();
    ledger.flush().unwrap();
    assert!(matches!(ledger.start_after(Seqno(5)), Err(Error::NotEmpty { last: 101 })));
    assert!(matches!(ledger.truncate(Seqno(99)), Err(Error::TruncateCommitted { .. })));
    drop(ledger);
    let ledger = Ledger::open(dir.path(), CHUNK_BYTES).unwrap();
    assert_eq!(ledger.first_seqno(), Seqno(101));
    assert_eq!(all_entries(&ledger), [(Seqno(101), entry(101))]);
}

#[test]
fn split_flush_makes_entries_durable_while_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), CHUNK_BYTES).unwrap();
    append_range(&mut ledger, 1..=6);
    let pending = ledger.begin_flush().unwrap();
    append_range(&mut ledger, 7..=9);
    assert_eq!(pending.sync().unwrap(), Seqno(6), "the sync covers what preceded begin_flush");
    let nothing_new = ledger.begin_flush().unwrap();
    assert_eq!(nothing_new.sync().unwrap(), Seqno(9));
    drop(ledger);
    let ledger = Ledger::open(dir.path(), CHUNK_BYTES).unwrap();
    assert_eq!(ledger.last_seqno(), Seqno(9));
    assert_eq!(ledger.read_entry(Seqno(7)).unwrap(), entry(7));
}

#[test]
fn write_buffered_hands_entries_to_the_os_and_leaves_them_to_the_next_sync() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), CHUNK_BYTES).unwrap();
    append_range(&mut ledger, 1..=2);
    let chunk = ledger.current.as_ref().unwrap();
    let path = dir.path().join(ChunkName::file_name(chunk.start, 0, ChunkState::InProgress));
    let expected = chunk.len;
    assert!(fs::metadata(&path).unwrap().len() < expected, "still in the write buffer");
    ledger.write_buffered().unwrap();
    assert_eq!(fs::metadata(&path).unwrap().len(), expected, "in the file: a crash keeps it");
    assert!(ledger.current.as_ref().unwrap().unsynced, "not durable yet: the next sync covers it");
    assert_eq!(ledger.begin_flush().unwrap().sync().unwrap(), Seqno(2));
    assert!(!ledger.current.as_ref().unwrap().unsynced);
}

#[test]
fn merged_syncs_cover_both_even_across_a_completed_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), CHUNK_BYTES).unwrap();
    append_range(&mut ledger, 1..=3);
    let first = ledger.begin_flush().unwrap();
    append_range(&mut ledger, 4..=200);
    let second = ledger.begin_flush().unwrap();
    assert!(ledger.chunks().len() > 1, "the appends completed a chunk in between");
    assert_eq!(first.merge(second).sync().unwrap(), Seqno(200));
}

#[test]
fn a_ledger_chunking_by_flags_ends_chunks_only_where_entries_say() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), CHUNK_BYTES).unwrap();
    ledger.chunk_by_flags_only();
    append_range(&mut ledger, 1..=200);
    assert_eq!(ledger.chunks().len(), 1, "no chunk ends by size alone");
    assert!(ledger.chunk_is_full(), "well past the size");
    ledger.append(Seqno(201), &entry_with(201, FORCE_LEDGER_CHUNK_AFTER, 0), true).unwrap();
    let chunks = ledger.chunks();
    assert_eq!(chunks.len(), 1, "the flagged signature completed the chunk: {chunks:?}");
    assert_eq!(chunks[0].end, Seqno(201));
    assert!(!ledger.chunk_is_full(), "a new chunk starts empty");
}

#[test]
fn archiving_moves_every_chunk_aside_and_continues_after_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), CHUNK_BYTES).unwrap();
    append_range(&mut ledger, 1..=10);
    ledger.commit(Seqno(4)).unwrap();
    let archive = ledger.archive_and_start_after(Seqno(40)).unwrap();
    assert_eq!(file_names(&archive), ["ledger_1-4.committed", "ledger_5-8", "ledger_9"]);
    assert_eq!((ledger.last_seqno(), ledger.committed_seqno()), (Seqno(40), Seqno(40)));
    assert!(ledger.append(Seqno(11), &entry(11), false).is_err(), "must follow the snapshot");
    append_range(&mut ledger, 41..=44);
    ledger.flush().unwrap();
    drop(ledger);
    let ledger = Ledger::open(dir.path(), CHUNK_BYTES).unwrap();
    assert_eq!((ledger.first_seqno(), ledger.last_seqno()), (Seqno(41), Seqno(44)));
}
