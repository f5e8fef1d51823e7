//! Bare wasmtime: the benchmark's baseline. The runtime's engine and linker shape and the same
//! component, with a WASI context and an epoch deadline per run, but none of Portico's per-run
//! work (grants, log budget, limiter, scratch, failure classification). Not for production use:
//! built only with the `bench` feature (the tests crate's benchmarks turn it on).

use crate::bindings::v0_2::ActionBackendPre;
use crate::bindings::{self, catalog, log, progress, types};
use crate::engine::Runtime;
use crate::request::{RunRequest, request_to_wit};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

/// A component instantiated and called with plain wasmtime.
pub struct BareHarness {
    engine: wasmtime::Engine,
    pre: ActionBackendPre<BareState>,
}

/// Minimal host state: what any wasmtime embedding of this world needs.
pub struct BareState {
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    hooks: NoHooks,
}

struct NoHooks;
impl WasiHttpHooks for NoHooks {}

impl BareHarness {
    /// Compiles `bytes` for the runtime's engine.
    pub fn new(runtime: &Runtime, bytes: &[u8]) -> wasmtime::Result<Self> {
        let engine = runtime.inner.engine.clone();
        let component = Component::from_binary(&engine, bytes)?;
        let pre = linker(&engine)?.instantiate_pre(&component)?;
        Ok(Self {
            pre: ActionBackendPre::new(pre)?,
            engine,
        })
    }

    /// New store, instantiate, call `run`, drop. `Ok(true)` when the guest returned `ok`.
    pub async fn run_once(&self, request: &RunRequest) -> wasmtime::Result<bool> {
        let mut store = self.store();
        let backend = self.pre.instantiate_async(&mut store).await?;
        let request = request_to_wit(request.clone());
        Ok(backend.call_run(&mut store, &request).await?.is_ok())
    }

    /// New store, instantiate, then call `run` twice on the one instance; answers how long the
    /// second call took: the guest's work once its memory pages are touched and its lazy
    /// initialisation done, against the first call's in `run_once`.
    pub async fn second_call(&self, request: &RunRequest) -> wasmtime::Result<std::time::Duration> {
        let mut store = self.store();
        let backend = self.pre.instantiate_async(&mut store).await?;
        let request = request_to_wit(request.clone());
        let first = backend.call_run(&mut store, &request).await?;
        let started = std::time::Instant::now();
        let second = backend.call_run(&mut store, &request).await?;
        let elapsed = started.elapsed();
        if first.is_err() || second.is_err() {
            wasmtime::bail!("the guest failed a run");
        }
        Ok(elapsed)
    }

    /// New store, instantiate, drop, with no call: what instantiation alone costs, to tell it
    /// from the guest's own work in `run_once`.
    pub async fn instantiate_once(&self) -> wasmtime::Result<()> {
        let mut store = self.store();
        self.pre.instantiate_async(&mut store).await?;
        Ok(())
    }

    fn store(&self) -> Store<BareState> {
        let state = BareState {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            hooks: NoHooks,
        };
        let mut store = Store::new(&self.engine, state);
        store.set_epoch_deadline(1_000);
        store
    }
}

/// The same imports as the runtime's linker, every one answered by `BareState` itself.
fn linker(engine: &Engine) -> wasmtime::Result<Linker<BareState>> {
    use bindings::v0_1::portico::action as v0_1;
    type Own = HasSelf<BareState>;
    let mut linker = Linker::new(engine);
    log::add_to_linker::<_, Own>(&mut linker, |s| s)?;
    progress::add_to_linker::<_, Own>(&mut linker, |s| s)?;
    catalog::add_to_linker::<_, Own>(&mut linker, |s| s)?;
    v0_1::log::add_to_linker::<_, Own>(&mut linker, |s| s)?;
    v0_1::progress::add_to_linker::<_, Own>(&mut linker, |s| s)?;
    v0_1::catalog::add_to_linker::<_, Own>(&mut linker, |s| s)?;
    bindings::add_types_to_linker(&mut linker)?;
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    Ok(linker)
}

impl WasiView for BareState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for BareState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl log::Host for BareState {
    async fn emit(&mut self, _: log::Level, _: String) -> wasmtime::Result<()> {
        Ok(())
    }
}

impl progress::Host for BareState {
    async fn report(&mut self, _: Option<u8>, _: Option<String>) -> wasmtime::Result<()> {
        Ok(())
    }
    async fn add_link(&mut self, _: bindings::types::Link) -> wasmtime::Result<()> {
        Ok(())
    }
    async fn hand_off(&mut self) -> wasmtime::Result<Result<progress::ExternalReport, String>> {
        Ok(Err("not granted".into()))
    }
}

impl catalog::Host for BareState {
    async fn get(
        &mut self,
        _: String,
        _: String,
    ) -> wasmtime::Result<Result<Option<types::Entity>, catalog::Error>> {
        Ok(Ok(None))
    }
    async fn upsert(
        &mut self,
        e: types::Entity,
    ) -> wasmtime::Result<Result<types::Entity, catalog::Error>> {
        Ok(Ok(e))
    }
    async fn delete(
        &mut self,
        _: String,
        _: String,
    ) -> wasmtime::Result<Result<bool, catalog::Error>> {
        Ok(Ok(false))
    }
    async fn search(
        &mut self,
        _: String,
    ) -> wasmtime::Result<Result<Vec<types::Entity>, catalog::Error>> {
        Ok(Ok(Vec::new()))
    }
}

bindings::answer_v0_1_with_v0_2!(log: BareState);
bindings::answer_v0_1_with_v0_2!(progress: BareState);
bindings::answer_v0_1_with_v0_2!(catalog: BareState);
