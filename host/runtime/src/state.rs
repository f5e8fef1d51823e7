//! The `T` of a run's `Store`: plain composition of the capability contexts, plus WASI's context
//! and the resource table the WASI interfaces share, and the memory limiter. Each capability's
//! host trait is implemented on its own context; the linker reaches it through a projection
//! from here (`|state| &mut state.log`), so nothing below knows this type.

use crate::bindings;
use crate::capabilities::catalog::{self, CatalogCtx};
use crate::capabilities::fs::{self, quota::Quota};
use crate::capabilities::http::HttpCtx;
use crate::capabilities::log::{self, LogCtx};
use crate::capabilities::progress::{self, ProgressCtx};
use crate::limiter::Limiter;
use std::sync::Arc;
use wasmtime::Engine;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::filesystem::WasiFilesystemCtxView;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

/// One run's host state.
pub(crate) struct RunState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    /// The scratch folder's quota, when the run has one.
    pub(crate) scratch: Option<Arc<Quota>>,
    pub(crate) http: HttpCtx,
    pub(crate) log: LogCtx,
    pub(crate) progress: ProgressCtx,
    pub(crate) catalog: CatalogCtx,
    pub(crate) limiter: Limiter,
}

impl WasiView for RunState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl fs::ScratchView for RunState {
    fn scratch_fs(&mut self) -> fs::ScratchFs<'_> {
        fs::ScratchFs {
            fs: WasiFilesystemCtxView {
                ctx: self.wasi.filesystem(),
                table: &mut self.table,
            },
            quota: self.scratch.as_ref(),
        }
    }
}

impl WasiHttpView for RunState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http.wasi,
            table: &mut self.table,
            hooks: &mut self.http.hooks,
        }
    }
}

/// Links every import the `action-backend` world may use, in every contract version this host
/// offers (`bindings::OFFERED`). What a run may actually do is decided per call by the run's
/// contexts, so one linker serves every plugin.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<RunState>> {
    let mut linker = Linker::<RunState>::new(engine);
    log::add_to_linker(&mut linker, |s| &mut s.log)?;
    progress::add_to_linker(&mut linker, |s| &mut s.progress)?;
    catalog::add_to_linker(&mut linker, |s| &mut s.catalog)?;
    bindings::add_types_to_linker(&mut linker)?;
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    // Over wasmtime-wasi's `wasi:filesystem/types`: the same calls with the scratch quota.
    fs::host::add_to_linker(&mut linker)?;
    Ok(linker)
}
