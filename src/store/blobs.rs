//! Making sled's blob files durable before a cycle answers.
//!
//! sled 0.34.7 writes any log message larger than its inline limit (a quarter of the
//! 512 KiB segment, minus a header: about 128 KiB) to its own file, `blobs/<lsn>`, and
//! puts only a pointer in the main log (`pagecache/logger.rs`, `pagecache/blob_io.rs`).
//! It never fsyncs that file nor the `blobs/` directory, so the writer's `fdatasync` of
//! the main log alone would make a pointer durable whose target may be lost.
//!
//! Such messages are not only our large values: they are sled's *pages*. A leaf page
//! holds up to 17 entries before it splits (`Node::should_split`, threshold 16), and page
//! consolidations rewrite the whole page, so neighbouring records far below the limit make
//! blobs too: `examples/blob_durability_probe.rs` wrote 40 events of 16 KiB on one entity
//! and sled made 7 blob files of 147,795 bytes (9 records a page); 8 and 12 KiB records
//! made none. Consolidations can run on any thread that reads the tree.
//!
//! So after every `Db::flush` (which writes every pending log buffer, and each blob just
//! before the buffer holding its pointer), the writer lists `blobs/`, fsyncs every file
//! newer than the last one it synced (names are increasing log sequence numbers), then
//! fsyncs the directory so the new names survive too, and only then `fdatasync`s the log.

use std::fs::File;
use std::io;
use std::path::PathBuf;

/// Tracks which blob files are already durable.
pub struct BlobSync {
    dir: PathBuf,
    /// The highest blob lsn fsync'd so far.
    synced_up_to: Option<i64>,
}

impl BlobSync {
    /// `sled_dir` is sled's own directory (the one holding `db` and `blobs/`).
    pub fn new(sled_dir: PathBuf) -> Self {
        Self {
            dir: sled_dir.join("blobs"),
            synced_up_to: None,
        }
    }

    /// Fsyncs every blob file written since the last call, then the directory if any was
    /// new. Returns how many files it synced.
    pub fn sync_new(&mut self) -> io::Result<usize> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut fresh: Vec<i64> = Vec::new();
        for entry in entries {
            let entry = entry?;
            let Some(lsn) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i64>().ok())
            else {
                continue;
            };
            if self.synced_up_to.is_none_or(|s| lsn > s) {
                fresh.push(lsn);
            }
        }
        if fresh.is_empty() {
            return Ok(0);
        }
        fresh.sort_unstable();
        let mut synced = 0;
        for lsn in &fresh {
            match File::open(self.dir.join(lsn.to_string())) {
                Ok(f) => {
                    f.sync_all()?;
                    synced += 1;
                }
                // sled removes blobs that are no longer referenced; a vanished one needs
                // no sync.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        File::open(&self.dir)?.sync_all()?;
        self.synced_up_to = fresh.last().copied().max(self.synced_up_to);
        metrics::counter!("emporium_journal_blobs_synced_total").increment(synced as u64);
        Ok(synced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syncs_each_new_blob_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = BlobSync::new(dir.path().to_path_buf());
        assert_eq!(b.sync_new().unwrap(), 0, "no blobs directory yet");
        std::fs::create_dir(dir.path().join("blobs")).unwrap();
        std::fs::write(dir.path().join("blobs/100"), b"x").unwrap();
        std::fs::write(dir.path().join("blobs/7"), b"y").unwrap();
        std::fs::write(dir.path().join("blobs/not-a-blob"), b"z").unwrap();
        assert_eq!(b.sync_new().unwrap(), 2);
        assert_eq!(b.sync_new().unwrap(), 0, "already synced");
        std::fs::write(dir.path().join("blobs/250"), b"w").unwrap();
        assert_eq!(b.sync_new().unwrap(), 1);
    }
}
