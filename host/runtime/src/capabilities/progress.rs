//! Progress and links, shown on the run page while the run goes. Always granted: it only
//! describes the run itself.

use crate::bindings::{progress, types};
use crate::events::Link;
use crate::run::RunState;

/// Links longer than this are refused (logged, not stored): they would only bloat the run.
const MAX_LINK_BYTES: usize = 4096;
/// At most this many links per run.
const MAX_LINKS: usize = 100;

impl progress::Host for RunState {
    async fn report(&mut self, percent: Option<u8>, label: Option<String>) -> wasmtime::Result<()> {
        self.events
            .progress(percent.map(|p| p.min(100)), label.as_deref());
        Ok(())
    }

    async fn add_link(&mut self, link: types::Link) -> wasmtime::Result<()> {
        let link = Link {
            title: link.title,
            url: link.url,
        };
        if self.links.len() >= MAX_LINKS || link.title.len() + link.url.len() > MAX_LINK_BYTES {
            let text = format!(
                "link ignored: a run keeps at most {MAX_LINKS} links of {MAX_LINK_BYTES} bytes"
            );
            self.log.emit(crate::LogLevel::Warn, &text);
            return Ok(());
        }
        self.events.link(&link);
        self.links.push(link);
        Ok(())
    }
}
