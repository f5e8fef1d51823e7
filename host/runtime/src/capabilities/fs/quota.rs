//! The scratch folder's quota: bytes, entries (files, folders, links) and open descriptors.
//!
//! The host cannot ask the kernel to enforce a quota on a plain folder, so it counts. Every call
//! that can grow the folder reserves its growth here first; the count is an upper bound on what
//! the folder holds (a write that fails or lands short still counts). When a reservation would
//! pass a limit and something may have freed space since the last look (a delete, a truncate, a
//! rename over a file), the folder is walked to learn its real size, so deleting files frees
//! quota; otherwise the reservation is refused at once, so a guest retrying a refused write in a
//! loop costs no walks.
//!
//! Bytes are counted as the kernel allocates them for a dense file: each file's size rounded up
//! to a 4 KiB block, holes included (a sparse file counts at its full length). Folders and links
//! count one block each when created; the folder's own listing growth is seen by the next walk.

use crate::capabilities::sink::LogSink;
use crate::events::LogLevel;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard};

/// The unit bytes are counted in: the block size of the usual Linux filesystems.
pub(crate) const BLOCK: u64 = 4096;

/// What a file of `size` bytes counts for: its size rounded up to a whole block.
pub(crate) fn blocks(size: u64) -> u64 {
    size.div_ceil(BLOCK).saturating_mul(BLOCK)
}

/// What writing `len` bytes at `offset` to a file of `size` bytes adds to the count: the blocks
/// between the old end and the new one, the hole before `offset` included.
pub(crate) fn growth(size: u64, offset: u64, len: u64) -> u64 {
    let end = offset.saturating_add(len);
    if len == 0 || end <= size {
        0
    } else {
        blocks(end) - blocks(size)
    }
}

/// The three bounds, from the action's `limits`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct QuotaLimits {
    /// `scratchMiB`, in bytes.
    pub(crate) bytes: u64,
    /// `scratchFiles`.
    pub(crate) entries: u64,
    /// `openFiles`.
    pub(crate) open: u32,
}

/// Which bound a refused call reached; each maps to the error code a POSIX program expects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// `scratchMiB` (or `scratchFiles`): no space left, `ENOSPC`.
    #[error("the scratch folder is full (limits.scratchMiB / limits.scratchFiles)")]
    Space,
    /// `openFiles`: `EMFILE`.
    #[error("too many open files (limits.openFiles)")]
    OpenFiles,
}

/// The counts, behind the quota's lock.
#[derive(Debug, Default)]
struct Usage {
    /// An upper bound on the bytes the folder holds, counted in blocks.
    bytes: u64,
    /// An upper bound on the entries under the folder.
    entries: u64,
    /// Bytes reserved by stream writes still running in the background: a walk cannot see
    /// them yet, so it adds them to what it finds.
    in_flight: u64,
    /// Something may have freed space since the last walk.
    stale: bool,
    /// Walks so far; a stream write that started before a walk and lands after it may be
    /// counted twice, which makes the count stale.
    walks: u64,
    /// Descriptors the plugin opened (by table index), to count each close once.
    open: HashSet<u32>,
    /// The run's log already says that this bound was reached (once per bound).
    told_space: bool,
    told_open: bool,
}

/// One run's quota on its scratch folder, shared by the filesystem calls and the write streams.
pub(crate) struct Quota {
    root: PathBuf,
    limits: QuotaLimits,
    usage: Mutex<Usage>,
    /// The run's log, told the first time each bound is reached.
    log: Option<Arc<LogSink>>,
}

/// A reservation made for a background stream write; settle it once the write has landed.
#[derive(Debug, Default)]
pub(crate) struct Flight {
    bytes: u64,
    walks: u64,
}

impl Quota {
    /// A quota on the empty folder `root`.
    pub(crate) fn new(root: PathBuf, limits: QuotaLimits, log: Option<Arc<LogSink>>) -> Self {
        Self {
            root,
            limits,
            usage: Mutex::default(),
            log,
        }
    }

    /// Tells the run's log, once per bound, which limit refused a call: the plugin only sees an
    /// error code, the person reading the run sees the field to raise.
    pub(crate) fn tell(&self, refusal: Refusal) {
        let first = {
            let mut usage = self.lock();
            let told = match refusal {
                Refusal::Space => &mut usage.told_space,
                Refusal::OpenFiles => &mut usage.told_open,
            };
            !std::mem::replace(told, true)
        };
        if let (true, Some(log)) = (first, &self.log) {
            let message = match refusal {
                Refusal::Space => format!(
                    "the scratch folder is full: the plugin may keep {} MiB in {} files and \
                     folders (limits.scratchMiB, limits.scratchFiles); the write failed with \
                     no space",
                    self.limits.bytes >> 20,
                    self.limits.entries
                ),
                Refusal::OpenFiles => format!(
                    "the plugin holds {} files open, its limit (limits.openFiles); opening \
                     another failed",
                    self.limits.open
                ),
            };
            log.emit_host(LogLevel::Warn, &message);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Usage> {
        self.usage.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves `bytes` more bytes and `entries` more entries, or says no.
    pub(crate) fn reserve(&self, bytes: u64, entries: u64) -> Result<(), Refusal> {
        if bytes == 0 && entries == 0 {
            return Ok(());
        }
        let walked = {
            let mut usage = self.lock();
            if self.fits(&usage, bytes, entries) {
                usage.bytes += bytes;
                usage.entries += entries;
                return Ok(());
            }
            if !usage.stale {
                return Err(Refusal::Space);
            }
            usage.stale = false;
            usage.walks += 1;
            // A stream write that lands during the walk is still in `in_flight`.
            let in_flight = usage.in_flight;
            drop(usage);
            let mut found = off_thread(|| measure(&self.root));
            found.bytes = found.bytes.saturating_add(in_flight);
            found
        };
        let mut usage = self.lock();
        usage.bytes = walked.bytes;
        usage.entries = walked.entries;
        if self.fits(&usage, bytes, entries) {
            usage.bytes += bytes;
            usage.entries += entries;
            Ok(())
        } else {
            Err(Refusal::Space)
        }
    }

    fn fits(&self, usage: &Usage, bytes: u64, entries: u64) -> bool {
        usage.bytes.saturating_add(bytes) <= self.limits.bytes
            && usage.entries.saturating_add(entries) <= self.limits.entries
    }

    /// Something may have freed space (a delete, a truncate, a rename over a file): the next
    /// reservation that does not fit looks at the folder first.
    pub(crate) fn may_have_freed(&self) {
        self.lock().stale = true;
    }

    /// Reserves `bytes` for a stream write that will land in the background.
    pub(crate) fn reserve_flight(&self, bytes: u64) -> Result<Flight, Refusal> {
        self.reserve(bytes, 0)?;
        let mut usage = self.lock();
        usage.in_flight += bytes;
        Ok(Flight {
            bytes,
            walks: usage.walks,
        })
    }

    /// The stream write reserved by `flight` has landed (or failed).
    pub(crate) fn settle(&self, flight: Flight) {
        if flight.bytes == 0 {
            return;
        }
        let mut usage = self.lock();
        usage.in_flight -= flight.bytes;
        if usage.walks != flight.walks {
            usage.stale = true;
        }
    }

    /// Counts a descriptor the plugin opened, or refuses past `openFiles`.
    pub(crate) fn open(&self, rep: u32) -> Result<(), Refusal> {
        let mut usage = self.lock();
        if usage.open.len() >= self.limits.open as usize {
            return Err(Refusal::OpenFiles);
        }
        usage.open.insert(rep);
        Ok(())
    }

    /// Whether one more descriptor may be opened (checked before opening, counted after).
    pub(crate) fn can_open(&self) -> Result<(), Refusal> {
        if self.lock().open.len() >= self.limits.open as usize {
            return Err(Refusal::OpenFiles);
        }
        Ok(())
    }

    /// The plugin closed the descriptor at `rep` (nothing happens for one it did not open here).
    pub(crate) fn closed(&self, rep: u32) {
        self.lock().open.remove(&rep);
    }
}

/// What a walk of the folder found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Measured {
    pub(crate) bytes: u64,
    pub(crate) entries: u64,
}

/// Walks `root` (not following links) and counts its entries and their blocks. Entries that
/// vanish during the walk are skipped.
pub(crate) fn measure(root: &Path) -> Measured {
    let mut found = Measured::default();
    let mut folders = vec![root.to_owned()];
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            found.entries += 1;
            if meta.is_dir() {
                found.bytes = found.bytes.saturating_add(blocks(meta.len()).max(BLOCK));
                folders.push(entry.path());
            } else {
                found.bytes = found.bytes.saturating_add(blocks(meta.len()));
            }
        }
    }
    found
}

/// Runs blocking file work: on a multi-threaded runtime the worker hands its other tasks to
/// another thread first; elsewhere it runs in place.
fn off_thread<R>(work: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn quota(dir: &Path, bytes: u64, entries: u64) -> Quota {
        Quota::new(
            dir.to_owned(),
            QuotaLimits {
                bytes,
                entries,
                open: 2,
            },
            None,
        )
    }

    #[test]
    fn sizes_count_in_whole_blocks() {
        assert_eq!(blocks(0), 0);
        assert_eq!(blocks(1), BLOCK);
        assert_eq!(blocks(BLOCK), BLOCK);
        assert_eq!(blocks(BLOCK + 1), 2 * BLOCK);
        assert_eq!(blocks(u64::MAX), u64::MAX, "saturates instead of wrapping");
    }

    #[test]
    fn a_write_grows_the_count_by_the_blocks_past_the_old_end() {
        // Appending to an empty file.
        assert_eq!(growth(0, 0, 10), BLOCK);
        // Overwriting inside the file, or writing nothing, grows nothing.
        assert_eq!(growth(3 * BLOCK, BLOCK, 100), 0);
        assert_eq!(growth(0, 5 * MIB, 0), 0);
        // Writing inside the last, partly used block grows nothing either.
        assert_eq!(growth(10, 10, 100), 0);
        // Crossing into the next block grows one block.
        assert_eq!(growth(BLOCK - 1, BLOCK - 1, 2), BLOCK);
        // A write far past the end counts the hole before it.
        assert_eq!(growth(0, 1 << 30, 1), (1 << 30) + BLOCK);
        // An offset near the top of the range cannot wrap around to a small count.
        assert_eq!(growth(0, u64::MAX - 1, 10), u64::MAX);
    }

    #[test]
    fn reservations_stop_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let quota = quota(dir.path(), 2 * MIB, 10);
        quota.reserve(MIB, 1).unwrap();
        quota.reserve(MIB, 0).unwrap();
        assert_eq!(quota.reserve(1, 0), Err(Refusal::Space));
        quota.reserve(0, 9).unwrap();
        assert_eq!(quota.reserve(0, 1), Err(Refusal::Space));
        // Nothing was freed, so a refusal does not walk the folder: the count stays.
        assert_eq!(quota.lock().walks, 0);
    }

    #[test]
    fn freed_space_is_found_by_walking_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let quota = quota(dir.path(), 2 * MIB, 10);
        quota.reserve(2 * MIB, 1).unwrap();
        std::fs::write(dir.path().join("big"), vec![0u8; 2 * MIB as usize]).unwrap();
        assert_eq!(quota.reserve(MIB, 1), Err(Refusal::Space));

        std::fs::remove_file(dir.path().join("big")).unwrap();
        quota.may_have_freed();
        quota.reserve(MIB, 1).unwrap();
        assert_eq!(quota.lock().walks, 1);
        assert_eq!(quota.lock().bytes, MIB);
        assert_eq!(quota.lock().entries, 1);
    }

    #[test]
    fn a_walk_counts_blocks_entries_and_holes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("small"), b"x").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let sparse = std::fs::File::create(dir.path().join("sub/sparse")).unwrap();
        sparse.set_len(10 * MIB + 1).unwrap();
        let found = measure(dir.path());
        assert_eq!(found.entries, 3);
        assert_eq!(found.bytes, BLOCK + BLOCK + 10 * MIB + BLOCK);
    }

    #[test]
    fn a_walk_keeps_stream_writes_still_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let quota = quota(dir.path(), MIB, 10);
        let flight = quota.reserve_flight(MIB / 2).unwrap();
        // The write lands in the background before the walk below but is settled after it.
        std::fs::write(dir.path().join("f"), vec![0u8; (MIB / 2) as usize]).unwrap();
        quota.may_have_freed();
        assert_eq!(quota.reserve(MIB, 0), Err(Refusal::Space));
        assert_eq!(quota.lock().bytes, MIB, "seen on disk and still in flight");
        quota.settle(flight);
        // Counted twice, so the next reservation that does not fit walks again.
        quota.reserve(MIB / 2, 0).unwrap();
        assert_eq!(quota.lock().walks, 2);
        assert_eq!(quota.lock().bytes, MIB);
    }

    #[test]
    fn open_descriptors_are_counted_until_closed() {
        let dir = tempfile::tempdir().unwrap();
        let quota = quota(dir.path(), MIB, 10);
        quota.open(7).unwrap();
        quota.open(8).unwrap();
        assert_eq!(quota.can_open(), Err(Refusal::OpenFiles));
        assert_eq!(quota.open(9), Err(Refusal::OpenFiles));
        quota.closed(7);
        quota.closed(7);
        quota.closed(42);
        quota.can_open().unwrap();
        quota.open(9).unwrap();
        assert_eq!(quota.can_open(), Err(Refusal::OpenFiles));
    }

    /// What the quota adds to one write (a `stat` of the file and a reservation) next to the
    /// write itself (4 KiB at the end of a file). Prints, asserts nothing.
    #[test]
    #[ignore = "a measurement: cargo test -p portico-runtime --release --lib write_cost -- --ignored --nocapture"]
    fn write_cost() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let quota = quota(dir.path(), 1 << 40, 10);
        let file = std::fs::File::create(dir.path().join("f")).unwrap();
        let block = vec![1u8; BLOCK as usize];
        let writes = 50_000u64;
        let started = std::time::Instant::now();
        for i in 0..writes {
            file.write_all_at(&block, i * BLOCK).unwrap();
        }
        let write = started.elapsed().as_nanos() as f64 / writes as f64;
        let started = std::time::Instant::now();
        for i in 0..writes {
            let size = file.metadata().unwrap().len();
            quota.reserve(growth(size, i * BLOCK, BLOCK), 0).unwrap();
        }
        let check = started.elapsed().as_nanos() as f64 / writes as f64;
        println!(
            "4 KiB pwrite: {write:.0} ns; quota check (fstat + reserve): {check:.0} ns ({:.0}%)",
            100.0 * check / write
        );
    }
}
