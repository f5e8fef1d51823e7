//! Progress and links, shown on the run page while the run goes: always granted, as they only
//! describe the run itself. Handing the run to an external system needs `capabilities.handOff`.

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

    async fn hand_off(&mut self) -> wasmtime::Result<Result<progress::ExternalReport, String>> {
        if self.grants.hand_off().is_none() {
            let text = "hand-off denied: the action does not grant capabilities.handOff";
            self.log.emit(crate::LogLevel::Warn, text);
            return Ok(Err(text.into()));
        }
        Ok(self.events.hand_off().map(|h| progress::ExternalReport {
            url: h.url,
            token: h.token,
        }))
    }
}
