//! Chunk files: names, and validation of their bytes at start-up.
//!
//! A chunk is `[u64 LE positions-table offset][entries…][u32 LE position per entry]`; the
//! offset is 0 and the table absent while the chunk is in progress.

use std::path::Path;

use crate::entry::{
    ENTRY_FORMAT_VERSION, ENTRY_HEADER_BYTES, decode_entry, decode_header, raw_header,
};
use crate::{Error, Result};

/// Bytes of the chunk header (the positions-table offset).
pub(crate) const CHUNK_HEADER_BYTES: u64 = 8;

/// Where a chunk stands in its life: in progress → complete → committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkState {
    /// `ledger_<start>`: still being appended to; no positions table.
    InProgress,
    /// `ledger_<start>-<end>`: ends on a signature, has its positions table; may still be
    /// truncated by a rollback.
    Complete,
    /// `ledger_<start>-<end>.committed`: immutable, identical on every up-to-date node.
    Committed,
}

/// A chunk file name parsed into its seqno range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ChunkName {
    /// First seqno in the chunk.
    pub(crate) start: u64,
    /// Last seqno, for complete and committed chunks.
    pub(crate) end: Option<u64>,
    /// Whether the name ends in `.committed`.
    pub(crate) committed: bool,
}

/// What a directory entry is, judged by its name alone.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NameKind {
    /// A chunk of this ledger.
    Chunk(ChunkName),
    /// A CCF side file (`.recovery`, `.ignored`, `.committed_prefix`) this crate does not read.
    SideFile,
    /// Not a ledger file at all.
    Unrelated,
    /// Starts with `ledger_` but does not parse.
    Invalid,
}

const COMMITTED_SUFFIX: &str = ".committed";
const SIDE_SUFFIXES: [&str; 3] = [".recovery", ".ignored", ".committed_prefix"];

/// Parses a decimal seqno written the one canonical way (no sign, no leading zero).
fn canonical_seqno(text: &str) -> Option<u64> {
    let value: u64 = text.parse().ok()?;
    (value.to_string() == text && value >= 1).then_some(value)
}

impl NameKind {
    /// Classifies a file name.
    pub(crate) fn of(name: &str) -> Self {
        let Some(rest) = name.strip_prefix("ledger_") else { return Self::Unrelated };
        if SIDE_SUFFIXES.iter().any(|suffix| rest.ends_with(suffix)) {
            return Self::SideFile;
        }
        let (range, committed) = match rest.strip_suffix(COMMITTED_SUFFIX) {
            Some(range) => (range, true),
            None => (rest, false),
        };
        let parsed = match range.split_once('-') {
            Some((start, end)) => canonical_seqno(start)
                .zip(canonical_seqno(end))
                .filter(|(start, end)| start <= end)
                .map(|(start, end)| ChunkName { start, end: Some(end), committed }),
            None if committed => None,
            None => canonical_seqno(range).map(|start| ChunkName { start, end: None, committed }),
        };
        parsed.map_or(Self::Invalid, Self::Chunk)
    }
}

impl ChunkName {
    /// The file name for a chunk in `state`.
    pub(crate) fn file_name(start: u64, end: u64, state: ChunkState) -> String {
        match state {
            ChunkState::InProgress => format!("ledger_{start}"),
            ChunkState::Complete => format!("ledger_{start}-{end}"),
            ChunkState::Committed => format!("ledger_{start}-{end}{COMMITTED_SUFFIX}"),
        }
    }
}

/// Where one entry sits in its chunk file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    /// Byte offset of the entry's header in the file.
    pub(crate) offset: u64,
    /// Entry length including its header.
    pub(crate) len: u64,
}

fn corrupt(file: &Path, offset: u64, reason: impl Into<String>) -> Error {
    Error::Corrupt { file: file.to_path_buf(), offset, reason: reason.into() }
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

fn to_usize(value: u64) -> usize {
    usize::try_from(value).expect("offsets inside an in-memory file fit usize")
}

/// Validates the entry at `offset` of `region` (the file's entry area) and that it holds
/// `seqno`; returns its length.
fn entry_at(file: &Path, region: &[u8], offset: u64, seqno: u64) -> Result<u64> {
    let rest = &region[to_usize(offset)..];
    let wrap = |error: Error| {
        let inner = error.entry_offset().unwrap_or(0);
        corrupt(file, offset + inner, format!("entry for seqno {seqno}: {error}"))
    };
    let header = decode_header(rest).map_err(wrap)?;
    if header.total_len() > rest.len() as u64 {
        return Err(corrupt(
            file,
            offset,
            format!("entry of {} bytes runs past the entries", header.total_len()),
        ));
    }
    let entry = decode_entry(&rest[..to_usize(header.total_len())]).map_err(wrap)?;
    if entry.seqno().0 != seqno {
        return Err(corrupt(
            file,
            offset + 24,
            format!("entry holds seqno {}, expected {seqno}", entry.seqno()),
        ));
    }
    Ok(header.total_len())
}

/// The number of positions in the table a header points to, if the header points inside
/// the file at a whole number of u32s. `None` for in-progress headers (offset 0).
pub(crate) fn table_count(bytes: &[u8]) -> Option<u64> {
    let table_offset = read_u64(bytes, 0)?;
    let len = bytes.len() as u64;
    if table_offset < CHUNK_HEADER_BYTES
        || table_offset > len
        || !(len - table_offset).is_multiple_of(4)
    {
        return None;
    }
    Some((len - table_offset) / 4).filter(|count| *count > 0)
}

/// Validates a complete chunk holding seqnos `start..=end`: header offset, positions
/// table (count and every position), and the framing of every entry.
pub(crate) fn scan_complete(file: &Path, bytes: &[u8], start: u64, end: u64) -> Result<Vec<Span>> {
    let table_offset =
        read_u64(bytes, 0).ok_or_else(|| corrupt(file, 0, "shorter than the chunk header"))?;
    let len = bytes.len() as u64;
    if table_offset == 0 {
        return Err(corrupt(file, 0, "complete chunk has no positions table (offset 0)"));
    }
    if table_offset < CHUNK_HEADER_BYTES || table_offset > len {
        return Err(corrupt(
            file,
            0,
            format!("positions table offset {table_offset} outside 8..={len}"),
        ));
    }
    if !(len - table_offset).is_multiple_of(4) {
        return Err(corrupt(file, table_offset, "positions table is not a whole number of u32s"));
    }
    let count = (len - table_offset) / 4;
    let expected = end - start + 1;
    if count != expected {
        return Err(corrupt(
            file,
            table_offset,
            format!("{count} positions, the name says {expected} entries"),
        ));
    }
    let region = &bytes[..to_usize(table_offset)];
    let table = &bytes[to_usize(table_offset)..];
    let mut spans = Vec::with_capacity(to_usize(count));
    let mut offset = CHUNK_HEADER_BYTES;
    for (slot, position) in table.chunks_exact(4).enumerate() {
        let slot = slot as u64;
        let position = u32::from_le_bytes(position.try_into().expect("chunks_exact(4)"));
        if u64::from(position) != offset {
            let at = table_offset + 4 * slot;
            return Err(corrupt(
                file,
                at,
                format!("position {position} for seqno {}, entry starts at {offset}", start + slot),
            ));
        }
        let entry_len = entry_at(file, region, offset, start + slot)?;
        spans.push(Span { offset, len: entry_len });
        offset += entry_len;
    }
    if offset != table_offset {
        return Err(corrupt(file, offset, "bytes between the last entry and the positions table"));
    }
    Ok(spans)
}

/// The outcome of scanning the last, in-progress chunk.
#[derive(Debug)]
pub(crate) struct InProgressScan {
    /// Whole valid entries, in seqno order from the chunk's start.
    pub(crate) spans: Vec<Span>,
    /// Length of the file once the torn tail is cut (≥ the 8-byte header).
    pub(crate) keep_len: u64,
    /// Offset where a torn tail starts, if there is one.
    pub(crate) torn_at: Option<u64>,
}

/// Whether `rest` (the bytes after the last whole entry) is what a crash can leave
/// behind: a partial header, a header whose entry runs past the end of the file, bytes
/// that never reached the disk (zeros), or the start of the positions table that
/// completing the chunk was writing. Anything else is corruption.
fn is_torn_tail(rest: &[u8], spans: &[Span]) -> bool {
    if rest.len() < ENTRY_HEADER_BYTES {
        return true;
    }
    if let Some((version, _, size)) = raw_header(rest)
        && version == ENTRY_FORMAT_VERSION
        && size.saturating_add(ENTRY_HEADER_BYTES as u64) > rest.len() as u64
    {
        return true;
    }
    if rest.len() > 4 * spans.len() {
        return rest.iter().all(|byte| *byte == 0);
    }
    let table = spans.iter().flat_map(|span| {
        u32::try_from(span.offset)
            .expect("in-progress positions were checked to fit u32")
            .to_le_bytes()
    });
    rest.iter().zip(table).all(|(byte, expected)| *byte == 0 || *byte == expected)
}

/// Scans an in-progress chunk starting at `start`, ignoring its header offset: every
/// whole entry must be valid; a torn tail (see `is_torn_tail`) is reported for cutting.
pub(crate) fn scan_in_progress(file: &Path, bytes: &[u8], start: u64) -> Result<InProgressScan> {
    let len = bytes.len() as u64;
    if len < CHUNK_HEADER_BYTES {
        return Ok(InProgressScan {
            spans: Vec::new(),
            keep_len: CHUNK_HEADER_BYTES,
            torn_at: Some(0),
        });
    }
    let mut spans: Vec<Span> = Vec::new();
    let mut offset = CHUNK_HEADER_BYTES;
    while offset < len {
        if offset > u64::from(u32::MAX) {
            return Err(corrupt(file, offset, "entry starts past the u32 positions range"));
        }
        if is_torn_tail(&bytes[to_usize(offset)..], &spans) {
            return Ok(InProgressScan { spans, keep_len: offset, torn_at: Some(offset) });
        }
        let entry_len = entry_at(file, bytes, offset, start + spans.len() as u64)?;
        spans.push(Span { offset, len: entry_len });
        offset += entry_len;
    }
    Ok(InProgressScan { spans, keep_len: len, torn_at: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_only_in_canonical_form() {
        let chunk = |start, end, committed| NameKind::Chunk(ChunkName { start, end, committed });
        assert_eq!(NameKind::of("ledger_1"), chunk(1, None, false));
        assert_eq!(NameKind::of("ledger_1-10"), chunk(1, Some(10), false));
        assert_eq!(NameKind::of("ledger_11-11.committed"), chunk(11, Some(11), true));
        assert_eq!(NameKind::of("ledger_5-10.recovery"), NameKind::SideFile);
        assert_eq!(NameKind::of("ledger_5-10.ignored"), NameKind::SideFile);
        assert_eq!(NameKind::of("snapshot_10_11"), NameKind::Unrelated);
        for bad in [
            "ledger_",
            "ledger_0",
            "ledger_01",
            "ledger_+1",
            "ledger_5-4",
            "ledger_1-",
            "ledger_1.committed",
            "ledger_a",
            "ledger_1-2-3",
            "ledger_1-2.committedx",
        ] {
            assert_eq!(NameKind::of(bad), NameKind::Invalid, "{bad}");
        }
        assert_eq!(ChunkName::file_name(1, 9, ChunkState::InProgress), "ledger_1");
        assert_eq!(ChunkName::file_name(1, 9, ChunkState::Complete), "ledger_1-9");
        assert_eq!(ChunkName::file_name(1, 9, ChunkState::Committed), "ledger_1-9.committed");
    }
}
