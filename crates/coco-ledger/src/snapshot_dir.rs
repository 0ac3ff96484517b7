//! The snapshot directory. A snapshot is written as `snapshot_<seqno>` when its signature
//! is appended; once the transaction recording its evidence commits, the evidence's
//! receipt is appended and the file becomes `snapshot_<seqno>_<evidence seqno>.committed`
//! (CCF's names, so CCF's tools find them). Only committed snapshots are ever started
//! from; a few of the newest are kept.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use coco_types::Seqno;

use crate::{Error, Result};

const PREFIX: &str = "snapshot_";
const COMMITTED_SUFFIX: &str = ".committed";

/// Most bytes one `write` call hands the kernel. Measured on a 2-core VM (ext4, Linux
/// 6.18) while the page cache grows, as it does on a node: writing 7-40 MB snapshots in one
/// call each took 250-390 ms of kernel time per 140 MB, in 1 MiB calls 33-42 ms. The
/// snapshot thread shares the cores that execute transactions.
const WRITE_CALL_BYTES: usize = 1 << 20;

/// Writes all of `bytes` to `file` in calls of at most [`WRITE_CALL_BYTES`].
fn write_in_calls(file: &mut File, bytes: &[u8]) -> std::io::Result<()> {
    bytes.chunks(WRITE_CALL_BYTES).try_for_each(|call| file.write_all(call))
}

/// A committed snapshot file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedSnapshot {
    /// The snapshot's seqno.
    pub seqno: Seqno,
    /// The seqno of the transaction recording its evidence.
    pub evidence: Seqno,
    /// The file.
    pub path: PathBuf,
}

/// The directory of snapshot files.
#[derive(Clone, Debug)]
pub struct SnapshotDir {
    dir: PathBuf,
}

enum Name {
    Pending(u64),
    Committed(u64, u64),
}

fn parse(name: &str) -> Option<Name> {
    let rest = name.strip_prefix(PREFIX)?;
    match rest.strip_suffix(COMMITTED_SUFFIX) {
        Some(ids) => {
            let (seqno, evidence) = ids.split_once('_')?;
            Some(Name::Committed(seqno.parse().ok()?, evidence.parse().ok()?))
        }
        None => rest.parse().ok().map(Name::Pending),
    }
}

impl SnapshotDir {
    /// Opens (creating) the directory.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be created.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(Error::io("create directory", &dir))?;
        Ok(Self { dir })
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn names(&self) -> Result<Vec<Name>> {
        let entries = fs::read_dir(&self.dir).map_err(Error::io("list", &self.dir))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(Error::io("list", &self.dir))?;
            if let Some(name) = entry.file_name().to_str().and_then(parse) {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// Committed snapshots, oldest first.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory cannot be listed.
    pub fn committed(&self) -> Result<Vec<CommittedSnapshot>> {
        let mut committed: Vec<_> = self
            .names()?
            .into_iter()
            .filter_map(|name| match name {
                Name::Committed(seqno, evidence) => Some(CommittedSnapshot {
                    seqno: Seqno(seqno),
                    evidence: Seqno(evidence),
                    path: self.dir.join(committed_name(seqno, evidence)),
                }),
                Name::Pending(_) => None,
            })
            .collect();
        committed.sort_by_key(|snapshot| snapshot.seqno);
        Ok(committed)
    }

    /// Writes the snapshot at `seqno`, not yet committed (replacing any earlier attempt),
    /// and `fdatasync`s it: the writer's thread waits for the disk, so that committing it
    /// later (under the node's lock) syncs only the receipt it appends, not the state.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn write_pending(&self, seqno: Seqno, bytes: &[u8]) -> Result<()> {
        let path = self.dir.join(format!("{PREFIX}{}", seqno.0));
        let mut file = File::create(&path).map_err(Error::io("create", &path))?;
        write_in_calls(&mut file, bytes).map_err(Error::io("write", &path))?;
        file.sync_data().map_err(Error::io("fsync", &path))
    }

    /// Commits the snapshot at `seqno`: appends `receipt` (of the evidence at `evidence`)
    /// and names it `snapshot_<seqno>_<evidence>.committed`, durably (the file is synced
    /// before the rename, the directory after).
    ///
    /// # Errors
    /// [`Error::Io`], including when the pending file is missing.
    pub fn commit(&self, seqno: Seqno, evidence: Seqno, receipt: &[u8]) -> Result<PathBuf> {
        let pending = self.dir.join(format!("{PREFIX}{}", seqno.0));
        let target = self.dir.join(committed_name(seqno.0, evidence.0));
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(&pending)
            .map_err(Error::io("open", &pending))?;
        file.write_all(receipt).map_err(Error::io("write", &pending))?;
        self.publish(&file, &pending, &target)?;
        Ok(target)
    }

    /// Stores a committed snapshot file received from another node, durably (written
    /// under a temporary name, synced, renamed, directory synced).
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn write_committed(&self, seqno: Seqno, evidence: Seqno, file: &[u8]) -> Result<PathBuf> {
        let tmp = self.dir.join(format!("{PREFIX}{}.receiving", seqno.0));
        let target = self.dir.join(committed_name(seqno.0, evidence.0));
        let mut out = File::create(&tmp).map_err(Error::io("create", &tmp))?;
        write_in_calls(&mut out, file).map_err(Error::io("write", &tmp))?;
        self.publish(&out, &tmp, &target)?;
        Ok(target)
    }

    /// Makes `file` (at `from`) durable and names it `to`: synced, renamed, directory
    /// synced, so a crash leaves either no committed file or a whole one.
    fn publish(&self, file: &File, from: &Path, to: &Path) -> Result<()> {
        file.sync_all().map_err(Error::io("fsync", from))?;
        fs::rename(from, to).map_err(Error::io("rename", from))?;
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(Error::io("fsync directory", &self.dir))
    }

    /// Removes the pending snapshot at `seqno`, if there is one.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn discard_pending(&self, seqno: Seqno) -> Result<()> {
        let path = self.dir.join(format!("{PREFIX}{}", seqno.0));
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(Error::io("remove", &path)(e))
            }
            _ => Ok(()),
        }
    }

    /// Removes pending snapshots at or after `from` (their signatures were rolled back).
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn discard_pending_from(&self, from: Seqno) -> Result<()> {
        for name in self.names()? {
            if let Name::Pending(seqno) = name
                && seqno >= from.0
            {
                let path = self.dir.join(format!("{PREFIX}{seqno}"));
                fs::remove_file(&path).map_err(Error::io("remove", &path))?;
            }
        }
        Ok(())
    }

    /// Keeps the `keep` newest committed snapshots and removes older ones, and pending
    /// ones below the newest committed (they will never commit usefully).
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn prune(&self, keep: usize) -> Result<()> {
        let committed = self.committed()?;
        let Some(newest) = committed.last().map(|snapshot| snapshot.seqno) else {
            return Ok(());
        };
        for old in &committed[..committed.len().saturating_sub(keep)] {
            fs::remove_file(&old.path).map_err(Error::io("remove", &old.path))?;
        }
        for name in self.names()? {
            if let Name::Pending(seqno) = name
                && seqno < newest.0
            {
                let path = self.dir.join(format!("{PREFIX}{seqno}"));
                fs::remove_file(&path).map_err(Error::io("remove", &path))?;
            }
        }
        Ok(())
    }
}

fn committed_name(seqno: u64, evidence: u64) -> String {
    format!("{PREFIX}{seqno}_{evidence}{COMMITTED_SUFFIX}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_snapshots_commit_prune_and_discard() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = SnapshotDir::open(tmp.path().join("snapshots")).unwrap();
        for seqno in [10, 20, 30, 40] {
            dir.write_pending(Seqno(seqno), b"snapshot").unwrap();
        }
        assert!(dir.committed().unwrap().is_empty());
        dir.commit(Seqno(10), Seqno(12), b"r1").unwrap();
        let path = dir.commit(Seqno(30), Seqno(31), b"r3").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"snapshotr3");
        assert!(path.ends_with("snapshot_30_31.committed"));
        let seqnos = |dir: &SnapshotDir| -> Vec<u64> {
            dir.committed().unwrap().iter().map(|s| s.seqno.0).collect()
        };
        assert_eq!(seqnos(&dir), [10, 30]);
        dir.prune(1).unwrap();
        assert_eq!(seqnos(&dir), [30]);
        // 20 is below the newest committed and went; 40 may still commit.
        assert!(!tmp.path().join("snapshots/snapshot_20").exists());
        assert!(tmp.path().join("snapshots/snapshot_40").exists());
        dir.discard_pending_from(Seqno(35)).unwrap();
        assert!(!tmp.path().join("snapshots/snapshot_40").exists());
        assert!(dir.commit(Seqno(40), Seqno(41), b"r").is_err());
    }
}
