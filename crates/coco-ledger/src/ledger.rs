//! The ledger directory: appending entries to chunk files, group commit, commit renames,
//! rollback, reads by seqno, and the start-up scan. Durability rules are in the crate doc.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use coco_types::Seqno;

use crate::chunk::{
    CHUNK_HEADER_BYTES, ChunkName, ChunkState, NameKind, Span, scan_complete, scan_in_progress,
    table_count,
};
use crate::entry::{FORCE_LEDGER_CHUNK_AFTER, FORCE_LEDGER_CHUNK_BEFORE, decode_entry};
use crate::{Error, Result};

/// Bytes buffered in memory before the in-progress chunk is written to the OS.
const WRITE_BUFFER_BYTES: usize = 1 << 20;

/// One chunk as listed by [`Ledger::chunks`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkInfo {
    /// First seqno of the chunk.
    pub start: Seqno,
    /// Last seqno of the chunk (inclusive); `start - 1` for an empty in-progress chunk.
    pub end: Seqno,
    /// In progress, complete or committed.
    pub state: ChunkState,
    /// The file's name in the ledger directory.
    pub file_name: String,
}

/// A complete (possibly committed) chunk.
#[derive(Clone, Copy, Debug)]
struct ClosedChunk {
    start: u64,
    end: u64,
    committed: bool,
}

impl ClosedChunk {
    fn state(self) -> ChunkState {
        if self.committed { ChunkState::Committed } else { ChunkState::Complete }
    }
}

/// The chunk being appended to: always the last one.
#[derive(Debug)]
struct OpenChunk {
    start: u64,
    writer: BufWriter<File>,
    /// Length of the file including bytes still in `writer`'s buffer.
    len: u64,
    /// Whether bytes were written since the last `fdatasync`.
    unsynced: bool,
}

/// Where the entry of one seqno lives.
#[derive(Clone, Copy, Debug)]
struct Location {
    chunk_start: u64,
    span: Span,
}

/// A ledger directory of CCF-format chunk files, appended to by one writer.
///
/// Seqnos are contiguous from [`Ledger::first_seqno`] to [`Ledger::last_seqno`]; an
/// in-memory index maps each to its chunk, offset and length.
#[derive(Debug)]
pub struct Ledger {
    dir: PathBuf,
    dir_handle: File,
    chunk_bytes: u64,
    /// Chunks complete only where entries' flags say (see [`Ledger::chunk_by_flags_only`]).
    chunk_by_flags_only: bool,
    closed: Vec<ClosedChunk>,
    current: Option<OpenChunk>,
    /// Seqno of `index[0]`; the next seqno to append while the ledger is empty.
    first_seqno: u64,
    index: Vec<Location>,
    /// Highest seqno known committed (from `commit` or from `.committed` names).
    committed: u64,
    /// Whether the last appended entry is a signature; unknown after open or truncate.
    last_is_signature: Option<bool>,
    /// Whether a file was created since the directory was last fsynced.
    dir_dirty: bool,
    /// Set by an I/O failure: memory and files may disagree, so every call fails.
    failed: bool,
}

impl Ledger {
    /// Opens (creating if needed) the ledger in `dir`, scanning and validating every chunk.
    /// A torn tail of the last in-progress chunk is cut off (with a warning); a chunk whose
    /// completion was interrupted before its rename is completed. `chunk_bytes` is the size
    /// after which a chunk ends at the next signature.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the file and offset for any damage other than a torn
    /// tail; [`Error::Io`] if the directory or a file cannot be read or repaired.
    ///
    /// # Panics
    /// If `chunk_bytes` is 0.
    pub fn open(dir: impl AsRef<Path>, chunk_bytes: u64) -> Result<Self> {
        assert!(chunk_bytes > 0, "chunk_bytes must be positive");
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(Error::io("create directory", &dir))?;
        let dir_handle = File::open(&dir).map_err(Error::io("open directory", &dir))?;
        let names = list_chunks(&dir)?;
        let mut ledger = Self {
            first_seqno: names.first().map_or(1, |name| name.start),
            dir,
            dir_handle,
            chunk_bytes,
            chunk_by_flags_only: false,
            closed: Vec::new(),
            current: None,
            index: Vec::new(),
            committed: 0,
            last_is_signature: None,
            dir_dirty: false,
            failed: false,
        };
        ledger.committed = ledger.first_seqno - 1;
        for name in names {
            let path = ledger.dir.join(chunk_file_name(&name));
            let bytes = fs::read(&path).map_err(Error::io("read", &path))?;
            match name.end {
                Some(end) => {
                    let spans = scan_complete(&path, &bytes, name.start, end)?;
                    ledger.push_closed(
                        ClosedChunk { start: name.start, end, committed: name.committed },
                        &spans,
                    );
                }
                None => ledger.recover_in_progress(&path, name.start, &bytes)?,
            }
        }
        ledger.sync_dir_if_dirty()?;
        ledger.check_invariants();
        Ok(ledger)
    }

    fn push_closed(&mut self, chunk: ClosedChunk, spans: &[Span]) {
        assert_eq!(
            spans.len() as u64,
            chunk.end - chunk.start + 1,
            "spans of chunk {}",
            chunk.start
        );
        self.index
            .extend(spans.iter().map(|span| Location { chunk_start: chunk.start, span: *span }));
        if chunk.committed {
            self.committed = self.committed.max(chunk.end);
        }
        self.closed.push(chunk);
    }

    /// Brings the last, in-progress chunk back to a state `append` can continue from.
    fn recover_in_progress(&mut self, path: &Path, start: u64, bytes: &[u8]) -> Result<()> {
        if let Some(count) = table_count(bytes)
            && let Ok(spans) = scan_complete(path, bytes, start, start + count - 1)
        {
            let end = start + count - 1;
            tracing::warn!(file = %path.display(), end, "completing a chunk whose rename was lost");
            let target = self.dir.join(ChunkName::file_name(start, end, ChunkState::Complete));
            fs::rename(path, &target).map_err(Error::io("rename", path))?;
            self.dir_dirty = true;
            self.push_closed(ClosedChunk { start, end, committed: false }, &spans);
            return Ok(());
        }
        let scan = scan_in_progress(path, bytes, start)?;
        let header_clear = bytes.get(..8).is_some_and(|header| header == [0u8; 8]);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(Error::io("open", path))?;
        if let Some(offset) = scan.torn_at {
            let file = path.display();
            tracing::warn!(%file, offset, "truncating the torn tail of the ledger");
        }
        if scan.torn_at.is_some() || !header_clear {
            file.set_len(scan.keep_len).map_err(Error::io("truncate", path))?;
            file.write_all_at(&[0u8; 8], 0).map_err(Error::io("write", path))?;
            file.sync_data().map_err(Error::io("fsync", path))?;
        }
        let mut writer = BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);
        writer.seek(SeekFrom::Start(scan.keep_len)).map_err(Error::io("seek", path))?;
        self.index
            .extend(scan.spans.iter().map(|span| Location { chunk_start: start, span: *span }));
        self.current = Some(OpenChunk { start, writer, len: scan.keep_len, unsynced: false });
        Ok(())
    }

    /// The seqno the next `append` must carry.
    #[must_use]
    pub fn next_seqno(&self) -> Seqno {
        Seqno(self.first_seqno + self.index.len() as u64)
    }

    /// The last seqno stored (0, or the `start_after` seqno, when empty).
    #[must_use]
    pub fn last_seqno(&self) -> Seqno {
        Seqno(self.first_seqno + self.index.len() as u64 - 1)
    }

    /// The first seqno stored (or that will be, when empty).
    #[must_use]
    pub fn first_seqno(&self) -> Seqno {
        Seqno(self.first_seqno)
    }

    /// The highest seqno this ledger knows to be committed.
    #[must_use]
    pub fn committed_seqno(&self) -> Seqno {
        Seqno(self.committed)
    }

    /// The chunk files, in seqno order.
    #[must_use]
    pub fn chunks(&self) -> Vec<ChunkInfo> {
        let mut chunks: Vec<ChunkInfo> = self
            .closed
            .iter()
            .map(|chunk| ChunkInfo {
                start: Seqno(chunk.start),
                end: Seqno(chunk.end),
                state: chunk.state(),
                file_name: ChunkName::file_name(chunk.start, chunk.end, chunk.state()),
            })
            .collect();
        if let Some(chunk) = &self.current {
            chunks.push(ChunkInfo {
                start: Seqno(chunk.start),
                end: self.last_seqno(),
                state: ChunkState::InProgress,
                file_name: ChunkName::file_name(chunk.start, 0, ChunkState::InProgress),
            });
        }
        chunks
    }

    /// From now on, completes chunks only where entries say so
    /// (`FORCE_LEDGER_CHUNK_AFTER`/`BEFORE`), never by this ledger's own size rule: with
    /// several nodes the primary decides, so every node's chunks are the same files.
    pub fn chunk_by_flags_only(&mut self) {
        self.chunk_by_flags_only = true;
    }

    /// Whether the in-progress chunk has reached `chunk_bytes`: the primary then marks its
    /// next signature `FORCE_LEDGER_CHUNK_AFTER`.
    #[must_use]
    pub fn chunk_is_full(&self) -> bool {
        self.current.as_ref().is_some_and(|chunk| chunk.len >= self.chunk_bytes)
    }

    /// Makes an empty ledger start after `seqno` (a node that joined from a snapshot at
    /// `seqno`): the next append must be `seqno + 1`, and `seqno` counts as committed.
    ///
    /// # Errors
    /// [`Error::NotEmpty`] if the ledger holds entries; [`Error::Io`] if an empty
    /// in-progress file cannot be removed.
    pub fn start_after(&mut self, seqno: Seqno) -> Result<()> {
        self.check_usable()?;
        if !self.index.is_empty() || !self.closed.is_empty() {
            return Err(Error::NotEmpty { last: self.last_seqno().0 });
        }
        self.guard(|ledger| {
            if let Some(chunk) = ledger.current.take() {
                ledger.remove_chunk_file(chunk.start, 0, ChunkState::InProgress)?;
            }
            ledger.first_seqno = seqno.next().0;
            ledger.committed = seqno.0;
            ledger.sync_dir_if_dirty()
        })?;
        self.check_invariants();
        Ok(())
    }

    /// Moves every chunk file into `<dir>/archived_before_<seqno + 1>/` and makes the
    /// ledger empty, starting after `seqno`: a node that installs a snapshot at `seqno`
    /// keeps its old entries for audit, out of the way of the ones that follow the
    /// snapshot. Returns the archive directory.
    ///
    /// # Errors
    /// [`Error::Io`] (after which the ledger is failed).
    pub fn archive_and_start_after(&mut self, seqno: Seqno) -> Result<PathBuf> {
        self.check_usable()?;
        let archive = self.dir.join(format!("archived_before_{}", seqno.0 + 1));
        self.guard(|ledger| {
            if let Some(mut chunk) = ledger.current.take() {
                let path =
                    ledger.dir.join(ChunkName::file_name(chunk.start, 0, ChunkState::InProgress));
                chunk.writer.flush().map_err(Error::io("write", &path))?;
            }
            fs::create_dir_all(&archive).map_err(Error::io("create directory", &archive))?;
            for name in list_chunks(&ledger.dir)? {
                let file = chunk_file_name(&name);
                let from = ledger.dir.join(&file);
                fs::rename(&from, archive.join(&file)).map_err(Error::io("rename", &from))?;
            }
            ledger.closed.clear();
            ledger.index.clear();
            ledger.last_is_signature = None;
            ledger.first_seqno = seqno.next().0;
            ledger.committed = seqno.0;
            ledger.dir_dirty = true;
            ledger.sync_dir_if_dirty()
        })?;
        self.check_invariants();
        Ok(archive)
    }

    /// Appends the raw bytes of entry `seqno` (from [`crate::encode_entry`]). The bytes
    /// reach the OS only when the write buffer fills, and the disk only at [`Ledger::flush`]
    /// (or when the chunk completes). When the chunk has reached `chunk_bytes` and the
    /// entry is a signature, or the entry carries `FORCE_LEDGER_CHUNK_AFTER`, the chunk is
    /// completed after it; `FORCE_LEDGER_CHUNK_BEFORE` completes the current chunk first.
    ///
    /// # Errors
    /// Caller mistakes, with no change made: [`Error::NotContiguous`], a framing error
    /// from decoding the entry, [`Error::WrongEntry`], [`Error::ChunkEndNotSignature`],
    /// [`Error::ChunkTooLarge`]. [`Error::Io`] (after which the ledger is failed).
    pub fn append(&mut self, seqno: Seqno, raw_entry: &[u8], is_signature: bool) -> Result<()> {
        self.check_usable()?;
        let expected = self.next_seqno();
        if seqno != expected {
            return Err(Error::NotContiguous { expected: expected.0, got: seqno.0 });
        }
        let entry = decode_entry(raw_entry)?;
        if entry.seqno() != seqno {
            return Err(Error::WrongEntry { seqno: seqno.0, entry_seqno: entry.seqno().0 });
        }
        let flags = entry.flags();
        if flags & FORCE_LEDGER_CHUNK_AFTER != 0 && !is_signature {
            return Err(Error::ChunkEndNotSignature { seqno: seqno.0 });
        }
        let current_entries = self.current.as_ref().map_or(0, |chunk| seqno.0 - chunk.start);
        let complete_first = flags & FORCE_LEDGER_CHUNK_BEFORE != 0 && current_entries > 0;
        if complete_first && self.last_is_signature == Some(false) {
            return Err(Error::ChunkEndNotSignature { seqno: seqno.0 - 1 });
        }
        let position = match &self.current {
            Some(chunk) if !complete_first => chunk.len,
            Some(_) | None => CHUNK_HEADER_BYTES,
        };
        if position > u64::from(u32::MAX) {
            return Err(Error::ChunkTooLarge { seqno: seqno.0, chunk_len: position });
        }
        let complete_after = is_signature && flags & FORCE_LEDGER_CHUNK_AFTER != 0;
        self.guard(|ledger| {
            if complete_first {
                ledger.complete_current()?;
            }
            ledger.write_entry(seqno.0, raw_entry, is_signature)?;
            let len = ledger.current.as_ref().map_or(0, |chunk| chunk.len);
            let by_size = !ledger.chunk_by_flags_only && is_signature && len >= ledger.chunk_bytes;
            if complete_after || by_size {
                ledger.complete_current()?;
            }
            Ok(())
        })?;
        self.check_invariants();
        Ok(())
    }

    /// Writes one validated entry to the in-progress chunk, starting one if needed.
    fn write_entry(&mut self, seqno: u64, raw_entry: &[u8], is_signature: bool) -> Result<()> {
        if self.current.is_none() {
            self.start_chunk(seqno)?;
        }
        let chunk = self.current.as_mut().expect("a chunk was started above");
        let start = chunk.start;
        chunk.writer.write_all(raw_entry).map_err(|e| {
            // Named only on failure: this is the per-entry path.
            let name = ChunkName::file_name(start, 0, ChunkState::InProgress);
            Error::io("write", &self.dir.join(name))(e)
        })?;
        let span = Span { offset: chunk.len, len: raw_entry.len() as u64 };
        chunk.len += span.len;
        chunk.unsynced = true;
        self.index.push(Location { chunk_start: chunk.start, span });
        self.last_is_signature = Some(is_signature);
        Ok(())
    }

    /// Creates `ledger_<start>` with an in-progress header.
    fn start_chunk(&mut self, start: u64) -> Result<()> {
        assert!(self.current.is_none(), "a chunk is already in progress");
        assert_eq!(start, self.next_seqno().0, "chunk start");
        let path = self.dir.join(ChunkName::file_name(start, 0, ChunkState::InProgress));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(Error::io("create", &path))?;
        let mut writer = BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);
        writer.write_all(&[0u8; 8]).map_err(Error::io("write", &path))?;
        self.current = Some(OpenChunk { start, writer, len: CHUNK_HEADER_BYTES, unsynced: true });
        self.dir_dirty = true;
        Ok(())
    }

    /// Ends the in-progress chunk durably: positions table, header offset, `fdatasync`,
    /// rename to `ledger_<start>-<end>`, directory fsync. Costs two syncs per chunk, and
    /// guarantees at most one in-progress file (the last) exists on disk.
    fn complete_current(&mut self) -> Result<()> {
        let mut chunk = self.current.take().expect("complete_current needs a chunk in progress");
        let end = self.last_seqno().0;
        assert!(end >= chunk.start, "completing an empty chunk {}", chunk.start);
        let path = self.dir.join(ChunkName::file_name(chunk.start, end, ChunkState::InProgress));
        let first = usize::try_from(chunk.start - self.first_seqno).expect("index fits memory");
        let mut table = Vec::with_capacity(4 * (self.index.len() - first));
        for location in &self.index[first..] {
            let position =
                u32::try_from(location.span.offset).expect("append checked positions fit u32");
            table.extend_from_slice(&position.to_le_bytes());
        }
        chunk.writer.write_all(&table).map_err(Error::io("write", &path))?;
        chunk.writer.flush().map_err(Error::io("write", &path))?;
        let file = chunk.writer.get_ref();
        file.write_all_at(&chunk.len.to_le_bytes(), 0).map_err(Error::io("write", &path))?;
        file.sync_data().map_err(Error::io("fsync", &path))?;
        let target = self.dir.join(ChunkName::file_name(chunk.start, end, ChunkState::Complete));
        fs::rename(&path, &target).map_err(Error::io("rename", &path))?;
        self.dir_dirty = true;
        self.sync_dir_if_dirty()?;
        self.closed.push(ClosedChunk { start: chunk.start, end, committed: false });
        Ok(())
    }

    /// Group commit: writes buffered bytes, `fdatasync`s the in-progress chunk, and
    /// fsyncs the directory if a file was created since the last sync. Every entry
    /// appended before the call is durable when it returns `Ok`.
    ///
    /// # Errors
    /// [`Error::Io`], after which the ledger is failed and must be reopened (after a
    /// failed fsync, the page cache cannot be trusted).
    pub fn flush(&mut self) -> Result<()> {
        self.check_usable()?;
        self.guard(|ledger| {
            if let Some(chunk) = ledger.current.as_mut()
                && chunk.unsynced
            {
                let path =
                    ledger.dir.join(ChunkName::file_name(chunk.start, 0, ChunkState::InProgress));
                chunk.writer.flush().map_err(Error::io("write", &path))?;
                chunk.writer.get_ref().sync_data().map_err(Error::io("fsync", &path))?;
                chunk.unsynced = false;
            }
            ledger.sync_dir_if_dirty()
        })
    }

    /// Records that every seqno up to `committed` is committed, and renames each complete
    /// chunk ending at or before it to `.committed` (durable on return). Lower values than
    /// already known are ignored.
    ///
    /// # Errors
    /// [`Error::CommitBeyondLast`] if `committed` is past the last entry; [`Error::Io`].
    pub fn commit(&mut self, committed: Seqno) -> Result<()> {
        self.check_usable()?;
        let last = self.last_seqno();
        if committed > last {
            return Err(Error::CommitBeyondLast { committed: committed.0, last: last.0 });
        }
        if committed.0 <= self.committed {
            return Ok(());
        }
        self.guard(|ledger| {
            for index in 0..ledger.closed.len() {
                let chunk = ledger.closed[index];
                if chunk.committed || chunk.end > committed.0 {
                    continue;
                }
                let from = ledger.dir.join(ChunkName::file_name(
                    chunk.start,
                    chunk.end,
                    ChunkState::Complete,
                ));
                let to = ledger.dir.join(ChunkName::file_name(
                    chunk.start,
                    chunk.end,
                    ChunkState::Committed,
                ));
                fs::rename(&from, &to).map_err(Error::io("rename", &from))?;
                ledger.dir_dirty = true;
                ledger.closed[index].committed = true;
            }
            ledger.sync_dir_if_dirty()?;
            ledger.committed = committed.0;
            Ok(())
        })?;
        self.check_invariants();
        Ok(())
    }

    /// Drops every entry after `to` (rollback of an uncommitted suffix). Chunks starting
    /// after `to` are deleted; a complete chunk holding `to` but not ending there is
    /// reopened as in progress. Durable on return. A no-op if `to >= last_seqno()`.
    ///
    /// # Errors
    /// [`Error::TruncateCommitted`] if `to` is below the committed seqno (including any
    /// `.committed` chunk); [`Error::Io`].
    ///
    /// # Panics
    /// If the ledger does not end at `to` afterwards, which is a bug in this crate.
    pub fn truncate(&mut self, to: Seqno) -> Result<()> {
        self.check_usable()?;
        if to >= self.last_seqno() {
            return Ok(());
        }
        if to.0 < self.committed {
            return Err(Error::TruncateCommitted { to: to.0, committed: self.committed });
        }
        self.guard(|ledger| ledger.truncate_files(to.0))?;
        assert_eq!(self.last_seqno(), to, "truncate postcondition");
        self.check_invariants();
        Ok(())
    }

    /// The file work of `truncate`, ordered so that a crash at any point leaves a ledger
    /// the start-up scan accepts: delete later files (newest first), fsync the directory,
    /// rename the chunk holding `to` to in-progress, fsync, then cut and clear its header.
    fn truncate_files(&mut self, to: u64) -> Result<()> {
        let keep = usize::try_from(to + 1 - self.first_seqno).expect("index fits memory");
        let cut_at = self.index.get(keep).map(|location| location.span.offset);
        self.last_is_signature = None;
        if let Some(chunk) = self.current.take() {
            if chunk.start <= to {
                self.current = Some(chunk);
                self.index.truncate(keep);
                return self.cut_current(cut_at.expect("an entry after `to` exists"));
            }
            let start = chunk.start;
            drop(chunk);
            self.remove_chunk_file(start, 0, ChunkState::InProgress)?;
        }
        while let Some(chunk) = self.closed.last().copied()
            && chunk.start > to
        {
            self.remove_chunk_file(chunk.start, chunk.end, ChunkState::Complete)?;
            self.closed.pop();
        }
        self.sync_dir_if_dirty()?;
        self.index.truncate(keep);
        match self.closed.last().copied() {
            Some(chunk) if chunk.end > to => self.reopen_closed(chunk, to),
            Some(_) | None => Ok(()),
        }
    }

    /// Reopens complete chunk `chunk` as the in-progress chunk ending at `to`.
    fn reopen_closed(&mut self, chunk: ClosedChunk, to: u64) -> Result<()> {
        assert!(!chunk.committed, "never reopen a committed chunk");
        assert!(chunk.start <= to, "chunk {} holds {to}", chunk.start);
        let from =
            self.dir.join(ChunkName::file_name(chunk.start, chunk.end, ChunkState::Complete));
        let path = self.dir.join(ChunkName::file_name(chunk.start, 0, ChunkState::InProgress));
        fs::rename(&from, &path).map_err(Error::io("rename", &from))?;
        self.dir_dirty = true;
        self.sync_dir_if_dirty()?;
        self.closed.pop();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(Error::io("open", &path))?;
        let last = self.index.last().expect("the chunk holds `to`");
        let len = last.span.offset + last.span.len;
        self.current = Some(OpenChunk {
            start: chunk.start,
            writer: BufWriter::with_capacity(WRITE_BUFFER_BYTES, file),
            len,
            unsynced: false,
        });
        self.cut_current(len)
    }

    /// Cuts the in-progress file to `len` bytes, clears its header and syncs it.
    fn cut_current(&mut self, len: u64) -> Result<()> {
        let chunk = self.current.as_mut().expect("cut_current needs a chunk in progress");
        let path = self.dir.join(ChunkName::file_name(chunk.start, 0, ChunkState::InProgress));
        chunk.writer.flush().map_err(Error::io("write", &path))?;
        let file = chunk.writer.get_mut();
        file.set_len(len).map_err(Error::io("truncate", &path))?;
        file.write_all_at(&[0u8; 8], 0).map_err(Error::io("write", &path))?;
        file.sync_data().map_err(Error::io("fsync", &path))?;
        file.seek(SeekFrom::Start(len)).map_err(Error::io("seek", &path))?;
        chunk.len = len;
        chunk.unsynced = false;
        Ok(())
    }

    fn remove_chunk_file(&mut self, start: u64, end: u64, state: ChunkState) -> Result<()> {
        let path = self.dir.join(ChunkName::file_name(start, end, state));
        fs::remove_file(&path).map_err(Error::io("remove", &path))?;
        self.dir_dirty = true;
        Ok(())
    }

    /// The first half of a group commit that does not hold the caller's lock across the
    /// disk wait: hands every buffered byte to the OS now and returns a [`PendingSync`]
    /// whose [`PendingSync::sync`] makes them durable. Entries appended before this call
    /// are durable once that `sync` returns `Ok`; the node calls it outside its lock so
    /// transactions keep executing during the `fdatasync`.
    ///
    /// # Errors
    /// [`Error::Io`], after which the ledger is failed and must be reopened.
    pub fn begin_flush(&mut self) -> Result<PendingSync> {
        self.check_usable()?;
        let last = self.last_seqno();
        self.guard(|ledger| {
            let mut file = None;
            if let Some(chunk) = ledger.current.as_mut()
                && chunk.unsynced
            {
                let path =
                    ledger.dir.join(ChunkName::file_name(chunk.start, 0, ChunkState::InProgress));
                chunk.writer.flush().map_err(Error::io("write", &path))?;
                let clone = chunk.writer.get_ref().try_clone().map_err(Error::io("dup", &path))?;
                file = Some((clone, path));
                chunk.unsynced = false;
            }
            let dir = if ledger.dir_dirty {
                ledger.dir_dirty = false;
                let clone = ledger.dir_handle.try_clone().map_err(Error::io("dup", &ledger.dir))?;
                Some((clone, ledger.dir.clone()))
            } else {
                None
            };
            Ok(PendingSync { file, dir, last })
        })
    }

    /// Hands buffered entries to the OS (a crash of the process keeps them) without
    /// making them durable: the next [`Ledger::begin_flush`] or [`Ledger::flush`] still
    /// syncs them. For entries nothing waits to see durable yet (no signature among
    /// them), which spares an `fdatasync` per append.
    ///
    /// # Errors
    /// [`Error::Io`], after which the ledger is failed and must be reopened.
    pub fn write_buffered(&mut self) -> Result<()> {
        self.check_usable()?;
        self.guard(|ledger| {
            if let Some(chunk) = ledger.current.as_mut() {
                let start = chunk.start;
                chunk.writer.flush().map_err(|e| {
                    let name = ChunkName::file_name(start, 0, ChunkState::InProgress);
                    Error::io("write", &ledger.dir.join(name))(e)
                })?;
            }
            Ok(())
        })
    }

    fn sync_dir_if_dirty(&mut self) -> Result<()> {
        if self.dir_dirty {
            self.dir_handle.sync_all().map_err(Error::io("fsync directory", &self.dir))?;
            self.dir_dirty = false;
        }
        Ok(())
    }

    /// The raw bytes of entry `seqno`, from disk or from the write buffer.
    ///
    /// # Errors
    /// [`Error::NotFound`] outside `first_seqno()..=last_seqno()`; [`Error::Io`].
    ///
    /// # Panics
    /// If the index names a chunk that is not listed, which is a bug in this crate.
    pub fn read_entry(&self, seqno: Seqno) -> Result<Vec<u8>> {
        self.check_usable()?;
        let location = self.location(seqno).ok_or(Error::NotFound { seqno: seqno.0 })?;
        let mut bytes =
            vec![0u8; usize::try_from(location.span.len).expect("entries are ≤ 1 GiB")];
        if let Some(chunk) =
            self.current.as_ref().filter(|chunk| chunk.start == location.chunk_start)
        {
            let buffered = chunk.writer.buffer();
            let on_file = chunk.len - buffered.len() as u64;
            let path = self.dir.join(ChunkName::file_name(chunk.start, 0, ChunkState::InProgress));
            let from_file = usize::try_from(on_file.saturating_sub(location.span.offset))
                .expect("fits memory")
                .min(bytes.len());
            chunk
                .writer
                .get_ref()
                .read_exact_at(&mut bytes[..from_file], location.span.offset)
                .map_err(Error::io("read", &path))?;
            let rest = bytes.len() - from_file;
            if rest > 0 {
                let in_buffer = usize::try_from(location.span.offset + from_file as u64 - on_file)
                    .expect("fits memory");
                bytes[from_file..].copy_from_slice(&buffered[in_buffer..in_buffer + rest]);
            }
            return Ok(bytes);
        }
        let path = self.closed_path(location.chunk_start);
        let file = File::open(&path).map_err(Error::io("open", &path))?;
        file.read_exact_at(&mut bytes, location.span.offset).map_err(Error::io("read", &path))?;
        Ok(bytes)
    }

    fn location(&self, seqno: Seqno) -> Option<Location> {
        let at = usize::try_from(seqno.0.checked_sub(self.first_seqno)?).ok()?;
        self.index.get(at).copied()
    }

    /// The current path of the closed chunk starting at `start`.
    fn closed_path(&self, start: u64) -> PathBuf {
        let at = self.closed.partition_point(|chunk| chunk.start < start);
        let chunk = self.closed[at];
        assert_eq!(chunk.start, start, "index names a closed chunk");
        self.dir.join(ChunkName::file_name(chunk.start, chunk.end, chunk.state()))
    }

    /// Where entry `seqno` lives: its chunk file and byte offset, for error messages that
    /// point an operator at the damage.
    #[must_use]
    pub fn position(&self, seqno: Seqno) -> Option<(PathBuf, u64)> {
        let location = self.location(seqno)?;
        let path = match self.current.as_ref().filter(|c| c.start == location.chunk_start) {
            Some(chunk) => {
                self.dir.join(ChunkName::file_name(chunk.start, 0, ChunkState::InProgress))
            }
            None => self.closed_path(location.chunk_start),
        };
        Some((path, location.span.offset))
    }

    /// Iterates `(seqno, raw entry)` from `from` to the last entry, for replay at start-up.
    /// Each closed chunk is read from disk once.
    #[must_use]
    pub fn entries(&self, from: Seqno) -> Entries<'_> {
        Entries { ledger: self, next: from.0.max(self.first_seqno), cached: None }
    }

    fn check_usable(&self) -> Result<()> {
        if self.failed { Err(Error::Failed) } else { Ok(()) }
    }

    /// Runs a mutation, marking the ledger failed if it hits an I/O error midway.
    fn guard<T>(&mut self, mutation: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let result = mutation(self);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    /// Checks that chunks tile the index with no gap and that commits form a prefix.
    ///
    /// # Panics
    /// If an invariant is broken, which is a bug in this crate.
    pub fn check_invariants(&self) {
        let mut next = self.first_seqno;
        let mut committed_prefix = true;
        for chunk in &self.closed {
            assert_eq!(chunk.start, next, "closed chunks are contiguous");
            assert!(chunk.end >= chunk.start, "chunk {} is not empty", chunk.start);
            if chunk.committed {
                assert!(
                    committed_prefix,
                    "committed chunk {} after an uncommitted one",
                    chunk.start
                );
                assert!(
                    chunk.end <= self.committed,
                    "committed chunk {} ends past commit",
                    chunk.start
                );
            }
            committed_prefix &= chunk.committed;
            next = chunk.end + 1;
        }
        if let Some(chunk) = &self.current {
            assert_eq!(chunk.start, next, "the in-progress chunk follows the closed ones");
        }
        let last = self.last_seqno().0;
        assert!(self.committed <= last, "committed {} <= last {last}", self.committed);
        assert!(self.current.is_some() || next == last + 1, "closed chunks end at the last entry");
    }
}

/// Iterator over `(seqno, raw entry)` returned by [`Ledger::entries`].
#[derive(Debug)]
pub struct Entries<'a> {
    ledger: &'a Ledger,
    next: u64,
    /// The closed chunk being iterated (its start seqno and whole file).
    cached: Option<(u64, Vec<u8>)>,
}

impl Entries<'_> {
    /// Reads entry `seqno` from the cached closed chunk, loading the chunk if needed;
    /// entries of the in-progress chunk go through `read_entry`.
    fn read(&mut self, seqno: Seqno) -> Result<Vec<u8>> {
        let location = self.ledger.location(seqno).ok_or(Error::NotFound { seqno: seqno.0 })?;
        if self.ledger.current.as_ref().is_some_and(|chunk| chunk.start == location.chunk_start) {
            return self.ledger.read_entry(seqno);
        }
        if self.cached.as_ref().is_none_or(|(start, _)| *start != location.chunk_start) {
            let path = self.ledger.closed_path(location.chunk_start);
            let bytes = fs::read(&path).map_err(Error::io("read", &path))?;
            self.cached = Some((location.chunk_start, bytes));
        }
        let (_, bytes) = self.cached.as_ref().expect("loaded above");
        let start = usize::try_from(location.span.offset).expect("fits memory");
        let end = start + usize::try_from(location.span.len).expect("fits memory");
        let path = || self.ledger.closed_path(location.chunk_start);
        let entry = bytes.get(start..end).ok_or_else(|| Error::Corrupt {
            file: path(),
            offset: location.span.offset,
            reason: "chunk changed on disk since it was scanned".into(),
        })?;
        Ok(entry.to_vec())
    }
}

impl Iterator for Entries<'_> {
    type Item = Result<(Seqno, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next > self.ledger.last_seqno().0 {
            return None;
        }
        let seqno = Seqno(self.next);
        self.next += 1;
        Some(self.read(seqno).map(|bytes| (seqno, bytes)))
    }
}

pub(crate) fn chunk_file_name(name: &ChunkName) -> String {
    let state = match (name.end, name.committed) {
        (None, _) => ChunkState::InProgress,
        (Some(_), false) => ChunkState::Complete,
        (Some(_), true) => ChunkState::Committed,
    };
    ChunkName::file_name(name.start, name.end.unwrap_or(0), state)
}

/// Lists and orders the chunk files of `dir`, checking that names parse, chunks are
/// contiguous, only the last is in progress, and committed chunks form a prefix.
pub(crate) fn list_chunks(dir: &Path) -> Result<Vec<ChunkName>> {
    let mut names = Vec::new();
    for item in fs::read_dir(dir).map_err(Error::io("list", dir))? {
        let item = item.map_err(Error::io("list", dir))?;
        let file_name = item.file_name();
        let path = dir.join(&file_name);
        let Some(text) = file_name.to_str() else { continue };
        match NameKind::of(text) {
            NameKind::Chunk(name) => names.push(name),
            NameKind::SideFile => {
                tracing::warn!(file = %path.display(), "ignoring ledger side file")
            }
            NameKind::Unrelated => {}
            NameKind::Invalid => {
                return Err(Error::Corrupt {
                    file: path,
                    offset: 0,
                    reason: "unparseable chunk file name".into(),
                });
            }
        }
    }
    names.sort_by_key(|name| name.start);
    for pair in names.windows(2) {
        let (older, newer) = (pair[0], pair[1]);
        let newer_path = dir.join(chunk_file_name(&newer));
        let corrupt =
            |reason: String| Error::Corrupt { file: newer_path.clone(), offset: 0, reason };
        let Some(older_end) = older.end else {
            return Err(corrupt(format!(
                "follows the in-progress chunk {}",
                chunk_file_name(&older)
            )));
        };
        if newer.start != older_end + 1 {
            return Err(corrupt(format!(
                "starts at {}, the previous chunk ends at {older_end}",
                newer.start
            )));
        }
        if newer.committed && !older.committed {
            return Err(corrupt("committed chunk after an uncommitted one".into()));
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests;

/// The disk half of a group commit started by [`Ledger::begin_flush`]; holds duplicated
/// file handles, so it may run without any lock while the ledger keeps appending.
#[derive(Debug)]
#[must_use = "entries are not durable until sync() returns"]
pub struct PendingSync {
    file: Option<(File, PathBuf)>,
    dir: Option<(File, PathBuf)>,
    last: Seqno,
}

impl PendingSync {
    /// One sync covering `self` and a `later` one: syncing the later chunk handle covers
    /// every earlier write to the same file, and an earlier chunk that is no longer the
    /// current one was synced when it was completed.
    ///
    /// # Panics
    /// If `later` was begun before `self` (it would cover less).
    pub fn merge(self, later: Self) -> Self {
        assert!(later.last >= self.last, "syncs merge in the order they were begun");
        Self { file: later.file.or(self.file), dir: later.dir.or(self.dir), last: later.last }
    }

    /// `fdatasync`s the chunk and fsyncs the directory if needed; returns the last seqno
    /// that is now durable.
    ///
    /// # Errors
    /// [`Error::Io`]: the ledger's durability is then unknown and the node must stop.
    pub fn sync(self) -> Result<Seqno> {
        if let Some((file, path)) = &self.file {
            file.sync_data().map_err(Error::io("fsync", path))?;
        }
        if let Some((dir, path)) = &self.dir {
            dir.sync_all().map_err(Error::io("fsync directory", path))?;
        }
        Ok(self.last)
    }
}
