//! `wasi:filesystem/types` with the scratch quota: wasmtime-wasi's own implementation does the
//! work; each call that can grow the folder reserves its growth first, and the write streams it
//! hands out are wrapped so that bytes written through `wasi:io/streams` are counted too.
//!
//! wasmtime-wasi has no quota hook, so the linker defines this interface a second time over
//! wasmtime-wasi's (shadowing it); runs without a scratch folder pass every call straight through.

use super::quota::{BLOCK, Flight, Quota, Refusal, growth};
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Arc;
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemCtxView};
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self, ErrorCode, HostDescriptor, HostDirectoryEntryStream,
};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, FsError, FsResult};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// `ENOSPC` (28 on Linux, macOS and the BSDs): the code a refused stream write carries, so that
/// `filesystem-error-code` turns it into `insufficient-space` as for a full disk.
const ENOSPC: i32 = 28;

/// wasmtime-wasi's filesystem view plus the run's quota (none without a scratch folder).
pub(crate) struct ScratchFs<'a> {
    /// What wasmtime-wasi's implementation works on.
    pub(crate) fs: WasiFilesystemCtxView<'a>,
    /// The run's quota.
    pub(crate) quota: Option<&'a Arc<Quota>>,
}

/// Gives the linker a [`ScratchFs`] for the store's state.
pub(crate) trait ScratchView: Send {
    /// The filesystem view with this run's quota.
    fn scratch_fs(&mut self) -> ScratchFs<'_>;
}

struct HasScratchFs;

impl HasData for HasScratchFs {
    type Data<'a> = ScratchFs<'a>;
}

/// Defines `wasi:filesystem/types` over wasmtime-wasi's definition (added before this). Names
/// and semver matching are the generated bindings', so guests importing any wasi 0.2.x reach
/// these functions.
pub(crate) fn add_to_linker<T: ScratchView + 'static>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    types::add_to_linker::<T, HasScratchFs>(linker, T::scratch_fs)?;
    linker.allow_shadowing(false);
    Ok(())
}

fn refused(quota: &Quota, refusal: Refusal) -> FsError {
    quota.tell(refusal);
    match refusal {
        Refusal::Space => ErrorCode::InsufficientSpace.into(),
        // WASI has no "too many open files"; `quota` is the closest code it has.
        Refusal::OpenFiles => ErrorCode::Quota.into(),
    }
}

/// A second handle to a descriptor the guest passed in, for a call made before delegating.
fn again(fd: &Resource<Descriptor>) -> Resource<Descriptor> {
    Resource::new_borrow(fd.rep())
}

impl ScratchFs<'_> {
    /// The open file behind `fd`, or `None` for a folder (wasmtime-wasi then says why not).
    fn file(&self, fd: &Resource<Descriptor>) -> FsResult<Option<Arc<std::fs::File>>> {
        match self.fs.table.get(fd)? {
            Descriptor::File(f) => Ok(Some(f.file.clone())),
            Descriptor::Dir(_) => Ok(None),
        }
    }

    /// Reserves what the call will add; if the call then fails, the count may be too high.
    async fn growing<R>(
        &mut self,
        bytes: u64,
        entries: u64,
        call: impl AsyncFnOnce(&mut WasiFilesystemCtxView<'_>) -> FsResult<R>,
    ) -> FsResult<R> {
        if let Some(quota) = self.quota {
            quota
                .reserve(bytes, entries)
                .map_err(|r| refused(quota, r))?;
        }
        let result = call(&mut self.fs).await;
        if let (Err(_), Some(quota)) = (&result, self.quota) {
            quota.may_have_freed();
        }
        result
    }

    /// Runs a call that may free space.
    async fn freeing<R>(
        &mut self,
        call: impl AsyncFnOnce(&mut WasiFilesystemCtxView<'_>) -> FsResult<R>,
    ) -> FsResult<R> {
        let result = call(&mut self.fs).await;
        if let Some(quota) = self.quota {
            quota.may_have_freed();
        }
        result
    }

    /// Wraps a write stream wasmtime-wasi just made for `fd` so its writes are counted.
    fn counted(
        &mut self,
        fd: &Resource<Descriptor>,
        stream: Resource<DynOutputStream>,
        at: Position,
    ) -> FsResult<Resource<DynOutputStream>> {
        let (Some(quota), Some(file)) = (self.quota, self.file(fd)?) else {
            return Ok(stream);
        };
        let inner = self.fs.table.delete(stream)?;
        let stream: DynOutputStream = Box::new(CountedStream {
            inner,
            file,
            at,
            quota: quota.clone(),
            flight: None,
        });
        Ok(self.fs.table.push(stream)?)
    }
}

impl types::Host for ScratchFs<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<ErrorCode> {
        types::Host::convert_error_code(&mut self.fs, err)
    }

    fn filesystem_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        types::Host::filesystem_error_code(&mut self.fs, err)
    }
}

impl HostDescriptor for ScratchFs<'_> {
    async fn write(
        &mut self,
        fd: Resource<Descriptor>,
        buf: Vec<u8>,
        offset: types::Filesize,
    ) -> FsResult<types::Filesize> {
        let grows = match (self.quota, self.file(&fd)?) {
            (Some(_), Some(file)) => growth(file.metadata()?.len(), offset, buf.len() as u64),
            _ => 0,
        };
        self.growing(grows, 0, async |fs| fs.write(fd, buf, offset).await)
            .await
    }

    async fn set_size(&mut self, fd: Resource<Descriptor>, size: types::Filesize) -> FsResult<()> {
        let now = match (self.quota, self.file(&fd)?) {
            (Some(_), Some(file)) => file.metadata()?.len(),
            _ => return self.fs.set_size(fd, size).await,
        };
        if size < now {
            return self.freeing(async |fs| fs.set_size(fd, size).await).await;
        }
        let grows = growth(now, now, size - now);
        self.growing(grows, 0, async |fs| fs.set_size(fd, size).await)
            .await
    }

    fn write_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: types::Filesize,
    ) -> FsResult<Resource<DynOutputStream>> {
        let stream = self.fs.write_via_stream(again(&fd), offset)?;
        self.counted(&fd, stream, Position::At(offset))
    }

    fn append_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<Resource<DynOutputStream>> {
        let stream = self.fs.append_via_stream(again(&fd))?;
        self.counted(&fd, stream, Position::End)
    }

    async fn open_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: types::PathFlags,
        path: String,
        oflags: types::OpenFlags,
        flags: types::DescriptorFlags,
    ) -> FsResult<Resource<Descriptor>> {
        let Some(quota) = self.quota else {
            return self.fs.open_at(fd, path_flags, path, oflags, flags).await;
        };
        quota.can_open().map_err(|r| refused(quota, r))?;
        let creates = oflags.contains(types::OpenFlags::CREATE)
            && self
                .fs
                .stat_at(again(&fd), path_flags, path.clone())
                .await
                .is_err();
        let opened = self
            .growing(0, u64::from(creates), async |fs| {
                fs.open_at(fd, path_flags, path, oflags, flags).await
            })
            .await?;
        if oflags.contains(types::OpenFlags::TRUNCATE) {
            quota.may_have_freed();
        }
        quota.open(opened.rep()).map_err(|r| refused(quota, r))?;
        Ok(opened)
    }

    fn drop(&mut self, fd: Resource<Descriptor>) -> wasmtime::Result<()> {
        if let Some(quota) = self.quota {
            quota.closed(fd.rep());
        }
        HostDescriptor::drop(&mut self.fs, fd)
    }

    async fn create_directory_at(
        &mut self,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FsResult<()> {
        self.growing(BLOCK, 1, async |fs| fs.create_directory_at(fd, path).await)
            .await
    }

    async fn symlink_at(
        &mut self,
        fd: Resource<Descriptor>,
        src_path: String,
        dest_path: String,
    ) -> FsResult<()> {
        let bytes = super::quota::blocks(src_path.len() as u64);
        self.growing(bytes, 1, async |fs| {
            fs.symlink_at(fd, src_path, dest_path).await
        })
        .await
    }

    async fn link_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path_flags: types::PathFlags,
        old_path: String,
        new_descriptor: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        // A walk sees the file once per name, so each link counts its size again.
        let bytes = match self.quota {
            Some(_) => self
                .fs
                .stat_at(again(&fd), old_path_flags, old_path.clone())
                .await
                .map_or(0, |s| super::quota::blocks(s.size)),
            None => 0,
        };
        self.growing(bytes, 1, async |fs| {
            fs.link_at(fd, old_path_flags, old_path, new_descriptor, new_path)
                .await
        })
        .await
    }

    async fn unlink_file_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        self.freeing(async |fs| fs.unlink_file_at(fd, path).await)
            .await
    }

    async fn remove_directory_at(
        &mut self,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FsResult<()> {
        self.freeing(async |fs| fs.remove_directory_at(fd, path).await)
            .await
    }

    async fn rename_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path: String,
        new_fd: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        self.freeing(async |fs| fs.rename_at(fd, old_path, new_fd, new_path).await)
            .await
    }

    // Everything below neither grows nor frees the folder: wasmtime-wasi's implementation as is.

    async fn advise(
        &mut self,
        fd: Resource<Descriptor>,
        offset: types::Filesize,
        len: types::Filesize,
        advice: types::Advice,
    ) -> FsResult<()> {
        self.fs.advise(fd, offset, len, advice).await
    }

    async fn sync_data(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        self.fs.sync_data(fd).await
    }

    async fn get_flags(&mut self, fd: Resource<Descriptor>) -> FsResult<types::DescriptorFlags> {
        self.fs.get_flags(fd).await
    }

    async fn get_type(&mut self, fd: Resource<Descriptor>) -> FsResult<types::DescriptorType> {
        self.fs.get_type(fd).await
    }

    async fn set_times(
        &mut self,
        fd: Resource<Descriptor>,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        self.fs.set_times(fd, atim, mtim).await
    }

    async fn read(
        &mut self,
        fd: Resource<Descriptor>,
        len: types::Filesize,
        offset: types::Filesize,
    ) -> FsResult<(Vec<u8>, bool)> {
        self.fs.read(fd, len, offset).await
    }

    async fn read_directory(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<Resource<types::DirectoryEntryStream>> {
        self.fs.read_directory(fd).await
    }

    async fn sync(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        self.fs.sync(fd).await
    }

    async fn stat(&mut self, fd: Resource<Descriptor>) -> FsResult<types::DescriptorStat> {
        self.fs.stat(fd).await
    }

    async fn stat_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: types::PathFlags,
        path: String,
    ) -> FsResult<types::DescriptorStat> {
        self.fs.stat_at(fd, path_flags, path).await
    }

    async fn set_times_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: types::PathFlags,
        path: String,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        self.fs.set_times_at(fd, path_flags, path, atim, mtim).await
    }

    async fn readlink_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<String> {
        self.fs.readlink_at(fd, path).await
    }

    fn read_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: types::Filesize,
    ) -> FsResult<Resource<DynInputStream>> {
        self.fs.read_via_stream(fd, offset)
    }

    async fn is_same_object(
        &mut self,
        a: Resource<Descriptor>,
        b: Resource<Descriptor>,
    ) -> wasmtime::Result<bool> {
        self.fs.is_same_object(a, b).await
    }

    async fn metadata_hash(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<types::MetadataHashValue> {
        self.fs.metadata_hash(fd).await
    }

    async fn metadata_hash_at(
        &mut self,
        fd: Resource<Descriptor>,
        path_flags: types::PathFlags,
        path: String,
    ) -> FsResult<types::MetadataHashValue> {
        self.fs.metadata_hash_at(fd, path_flags, path).await
    }
}

impl HostDirectoryEntryStream for ScratchFs<'_> {
    async fn read_directory_entry(
        &mut self,
        stream: Resource<types::DirectoryEntryStream>,
    ) -> FsResult<Option<types::DirectoryEntry>> {
        self.fs.read_directory_entry(stream).await
    }

    fn drop(&mut self, stream: Resource<types::DirectoryEntryStream>) -> wasmtime::Result<()> {
        HostDirectoryEntryStream::drop(&mut self.fs, stream)
    }
}

/// Where a write stream writes.
#[derive(Clone, Copy, Debug)]
enum Position {
    /// At this offset, moving on with each write.
    At(u64),
    /// At the end of the file, wherever it is then.
    End,
}

/// A file's write stream whose writes reserve their growth first. A refused write fails with
/// `ENOSPC` and writes nothing; the stream stays usable, as a POSIX descriptor does after
/// `ENOSPC` (wasi-libc keeps one stream per descriptor).
struct CountedStream {
    inner: DynOutputStream,
    file: Arc<std::fs::File>,
    at: Position,
    quota: Arc<Quota>,
    /// The reservation of the write running in the background, if any.
    flight: Option<Flight>,
}

impl CountedStream {
    /// What writing `len` bytes now adds to the folder.
    fn growth(&self, len: u64) -> StreamResult<u64> {
        let size = self
            .file
            .metadata()
            .map_err(|e| StreamError::LastOperationFailed(e.into()))?
            .len();
        let offset = match self.at {
            Position::At(offset) => offset,
            Position::End => size,
        };
        Ok(growth(size, offset, len))
    }

    fn no_space(&self, refusal: Refusal) -> StreamError {
        self.quota.tell(refusal);
        StreamError::LastOperationFailed(std::io::Error::from_raw_os_error(ENOSPC).into())
    }

    fn advance(&mut self, len: u64) {
        if let Position::At(offset) = &mut self.at {
            *offset = offset.saturating_add(len);
        }
    }

    fn settle(&mut self) {
        if let Some(flight) = self.flight.take() {
            self.quota.settle(flight);
        }
    }
}

#[async_trait]
impl OutputStream for CountedStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        // The inner stream accepts a write only once the previous one landed.
        self.settle();
        let len = bytes.len() as u64;
        let flight = self
            .quota
            .reserve_flight(self.growth(len)?)
            .map_err(|r| self.no_space(r))?;
        self.flight = Some(flight);
        let result = self.inner.write(bytes);
        match &result {
            Ok(()) => self.advance(len),
            Err(_) => {
                self.settle();
                self.quota.may_have_freed();
            }
        }
        result
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        let ready = self.inner.check_write()?;
        if ready > 0 {
            self.settle();
        }
        Ok(ready)
    }

    async fn blocking_write_and_flush(&mut self, bytes: Bytes) -> StreamResult<()> {
        // Let an earlier write land, so the file's size below includes it.
        self.ready().await;
        let len = bytes.len() as u64;
        self.quota
            .reserve(self.growth(len)?, 0)
            .map_err(|r| self.no_space(r))?;
        let result = self.inner.blocking_write_and_flush(bytes).await;
        match &result {
            Ok(()) => self.advance(len),
            Err(_) => self.quota.may_have_freed(),
        }
        result
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await;
        self.settle();
    }
}

#[async_trait]
impl Pollable for CountedStream {
    async fn ready(&mut self) {
        self.inner.ready().await;
        self.settle();
    }
}

impl Drop for CountedStream {
    fn drop(&mut self) {
        self.settle();
    }
}

/// The host trait called on a [`ScratchFs`] directly, as the linker would: no guest involved.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::fs::mount_scratch;
    use crate::capabilities::sink::LogSink;
    use crate::events::RecordedEvents;
    use crate::limits::Limits;
    use wasmtime::component::ResourceTable;
    use wasmtime_wasi::WasiCtxBuilder;
    use wasmtime_wasi::p2::bindings::filesystem::preopens;
    use wasmtime_wasi::p2::bindings::filesystem::types::{DescriptorFlags, OpenFlags, PathFlags};

    fn code(err: &FsError) -> Option<ErrorCode> {
        err.downcast_ref().copied()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn writes_and_opens_past_the_scratch_quota_fail_and_say_why() {
        let root = tempfile::tempdir().unwrap();
        let events = Arc::new(RecordedEvents::default());
        let limits = Limits {
            scratch_mib: 1,
            open_files: 1,
            ..Limits::default()
        };
        let log = Arc::new(LogSink::new(events.clone(), &limits));
        let mut builder = WasiCtxBuilder::new();
        let scratch = mount_scratch(&mut builder, root.path(), &limits, log).unwrap();
        let mut wasi = builder.build();
        let mut table = ResourceTable::new();
        let mut fs = ScratchFs {
            fs: WasiFilesystemCtxView {
                ctx: wasi.filesystem(),
                table: &mut table,
            },
            quota: Some(&scratch.quota),
        };
        let (dir, name) = preopens::Host::get_directories(&mut fs.fs)
            .unwrap()
            .pop()
            .unwrap();
        assert_eq!(name, "/scratch");

        let rw = DescriptorFlags::READ | DescriptorFlags::WRITE;
        let file = HostDescriptor::open_at(
            &mut fs,
            again(&dir),
            PathFlags::empty(),
            "a.txt".into(),
            OpenFlags::CREATE,
            rw,
        )
        .await
        .unwrap();
        let wrote = HostDescriptor::write(&mut fs, again(&file), vec![1; 1000], 0)
            .await
            .unwrap();
        assert_eq!(wrote, 1000);
        let full = HostDescriptor::write(&mut fs, again(&file), vec![1; 2 << 20], 0)
            .await
            .unwrap_err();
        assert_eq!(code(&full), Some(ErrorCode::InsufficientSpace));

        let second = HostDescriptor::open_at(
            &mut fs,
            again(&dir),
            PathFlags::empty(),
            "b.txt".into(),
            OpenFlags::CREATE,
            rw,
        )
        .await
        .unwrap_err();
        assert_eq!(code(&second), Some(ErrorCode::Quota), "limits.openFiles");
        HostDescriptor::drop(&mut fs, file).unwrap();
        let reopened = HostDescriptor::open_at(
            &mut fs,
            again(&dir),
            PathFlags::empty(),
            "b.txt".into(),
            OpenFlags::CREATE,
            rw,
        )
        .await;
        assert!(reopened.is_ok(), "a closed file frees its slot");

        let text = events.log_text();
        assert!(text.contains("the scratch folder is full"), "{text}");
        assert!(text.contains("limits.openFiles"), "{text}");
    }
}
