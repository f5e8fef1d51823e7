//! Progress and links, shown on the run page while the run goes: always granted, as they only
//! describe the run itself. Handing the run to an external system needs `capabilities.handOff`.

use crate::bindings::{progress, types};
use crate::capabilities::log::LogSink;
use crate::events::{Link, LogLevel};
use crate::grant::{Limits, cut_text};
use crate::run::RunState;

impl progress::Host for RunState {
    async fn report(&mut self, percent: Option<u8>, label: Option<String>) -> wasmtime::Result<()> {
        let label = label.map(|l| cut_text(l, self.grants.limits.label_bytes, "labelBytes"));
        self.events
            .progress(percent.map(|p| p.min(100)), label.as_deref());
        Ok(())
    }

    async fn add_link(&mut self, link: types::Link) -> wasmtime::Result<()> {
        let link = Link {
            title: link.title,
            url: link.url,
        };
        if keep_link(&self.links, &link, &self.grants.limits, &self.log) {
            self.events.link(&link);
            self.links.push(link);
        }
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

/// Whether one more link fits the action's `links` and `linkBytes`; says in the log why not.
pub(crate) fn keep_link(kept: &[Link], link: &Link, limits: &Limits, log: &LogSink) -> bool {
    let reason = if kept.len() >= limits.links as usize {
        format!("the run already has {} links (limits.links)", limits.links)
    } else if link.title.len() + link.url.len() > limits.link_bytes as usize {
        format!(
            "it is {} bytes, over limits.linkBytes ({})",
            link.title.len() + link.url.len(),
            limits.link_bytes
        )
    } else {
        return true;
    };
    log.emit(LogLevel::Warn, &format!("link ignored: {reason}"));
    false
}
