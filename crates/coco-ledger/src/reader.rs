//! Reading a ledger directory without changing it, for auditors (`coco ledger verify`,
//! `coco ledger dump`). Unlike [`crate::Ledger::open`], nothing is repaired: a torn tail
//! of the in-progress chunk is reported, not cut, and the directory may belong to a
//! running node.

use std::fs;
use std::path::{Path, PathBuf};

use coco_types::Seqno;

use crate::chunk::{ChunkName, ChunkState, Span, scan_complete, scan_in_progress};
use crate::ledger::{chunk_file_name, list_chunks};
use crate::{Error, Result};

/// One chunk file of a ledger directory, as listed by [`LedgerFiles::open`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkFile {
    /// The file.
    pub path: PathBuf,
    /// First seqno.
    pub start: Seqno,
    /// Last seqno, from the name (complete and committed chunks only).
    pub end: Option<Seqno>,
    /// In progress, complete or committed.
    pub state: ChunkState,
    /// File size in bytes.
    pub size: u64,
}

/// The chunk files of a ledger directory, in seqno order, checked to be contiguous.
#[derive(Clone, Debug)]
pub struct LedgerFiles {
    chunks: Vec<ChunkFile>,
}

/// A chunk's bytes and where each entry is.
#[derive(Debug)]
pub struct ChunkContents {
    bytes: Vec<u8>,
    start: u64,
    spans: Vec<Span>,
    /// Offset of a torn tail (in-progress chunks only), which is not read.
    pub torn_at: Option<u64>,
}

impl LedgerFiles {
    /// Lists the chunks of `dir`.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for unparsable names, gaps or misplaced chunks; IO errors.
    pub fn open(dir: &Path) -> Result<Self> {
        let mut chunks = Vec::new();
        for name in list_chunks(dir)? {
            let path = dir.join(chunk_file_name(&name));
            let size = fs::metadata(&path).map_err(Error::io("stat", &path))?.len();
            chunks.push(ChunkFile {
                path,
                start: Seqno(name.start),
                end: name.end.map(Seqno),
                state: state_of(&name),
                size,
            });
        }
        Ok(Self { chunks })
    }

    /// The chunks, in seqno order.
    #[must_use]
    pub fn chunks(&self) -> &[ChunkFile] {
        &self.chunks
    }

    /// Total bytes of all chunk files (for progress reporting).
    #[must_use]
    pub fn total_bytes(&self) -> u64 {
        self.chunks.iter().map(|chunk| chunk.size).sum()
    }

    /// Reads and frames one chunk.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the file and offset of the first framing problem.
    pub fn read(chunk: &ChunkFile) -> Result<ChunkContents> {
        let bytes = fs::read(&chunk.path).map_err(Error::io("read", &chunk.path))?;
        let start = chunk.start.0;
        let (spans, torn_at) = match chunk.end {
            Some(end) => (scan_complete(&chunk.path, &bytes, start, end.0)?, None),
            None => {
                let scan = scan_in_progress(&chunk.path, &bytes, start)?;
                (scan.spans, scan.torn_at)
            }
        };
        Ok(ChunkContents { bytes, start, spans, torn_at })
    }
}

impl ChunkContents {
    /// `(seqno, byte offset in the file, raw entry)` for every whole entry.
    ///
    /// # Panics
    /// Never: spans were checked to lie inside the file when it was read.
    pub fn entries(&self) -> impl Iterator<Item = (Seqno, u64, &[u8])> {
        self.spans.iter().zip(self.start..).map(|(span, seqno)| {
            let begin = usize::try_from(span.offset).expect("spans lie inside the file");
            let end = usize::try_from(span.offset + span.len).expect("spans lie inside the file");
            (Seqno(seqno), span.offset, &self.bytes[begin..end])
        })
    }

    /// Number of whole entries.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.spans.len() as u64
    }

    /// True if the chunk holds no whole entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

fn state_of(name: &ChunkName) -> ChunkState {
    match (name.end, name.committed) {
        (None, _) => ChunkState::InProgress,
        (Some(_), false) => ChunkState::Complete,
        (Some(_), true) => ChunkState::Committed,
    }
}
