//! Progress and links, shown on the run page while the run goes: always granted, as they only
//! describe the run itself. Handing the run to an external system needs `capabilities.handOff`.

use crate::bindings::{self, progress, types};
use crate::capabilities::sink::LogSink;
use crate::events::{Link, LogLevel, RunEvents};
use crate::limits::{GrantError, Limits, cut_text};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use wasmtime::component::{HasData, Linker};

/// `capabilities.handOff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HandOffGrant {
    /// How long the external system has to report a final status, from the plugin's return.
    pub timeout_seconds: u32,
}

impl HandOffGrant {
    /// A week: longer than any pipeline should take to report.
    pub const MAX_TIMEOUT_SECONDS: u32 = 7 * 24 * 3600;

    /// Checks the timeout is within 1 s and [`Self::MAX_TIMEOUT_SECONDS`].
    pub(crate) fn check(&self) -> Result<(), GrantError> {
        if self.timeout_seconds == 0 || self.timeout_seconds > Self::MAX_TIMEOUT_SECONDS {
            return Err(GrantError::new(
                "capabilities.handOff.timeoutSeconds",
                format!("must be between 1 and {}", Self::MAX_TIMEOUT_SECONDS),
            ));
        }
        Ok(())
    }
}

/// The run's `progress` context: where reports go, the links added so far, and whether the
/// action grants a hand-off.
pub(crate) struct ProgressCtx {
    events: Arc<dyn RunEvents>,
    limits: Limits,
    hand_off: bool,
    log: Arc<LogSink>,
    links: Vec<Link>,
}

impl ProgressCtx {
    pub(crate) fn new(
        events: Arc<dyn RunEvents>,
        limits: Limits,
        hand_off: Option<HandOffGrant>,
        log: Arc<LogSink>,
    ) -> Self {
        Self {
            events,
            limits,
            hand_off: hand_off.is_some(),
            log,
            links: Vec::new(),
        }
    }

    /// The links the plugin added during the run, leaving none.
    pub(crate) fn take_links(&mut self) -> Vec<Link> {
        std::mem::take(&mut self.links)
    }
}

impl progress::Host for ProgressCtx {
    async fn report(&mut self, percent: Option<u8>, label: Option<String>) -> wasmtime::Result<()> {
        let label = label.map(|l| cut_text(l, self.limits.label_bytes, "labelBytes"));
        self.events
            .progress(percent.map(|p| p.min(100)), label.as_deref());
        Ok(())
    }

    async fn add_link(&mut self, link: types::Link) -> wasmtime::Result<()> {
        let link = Link {
            title: link.title,
            url: link.url,
        };
        if keep_link(&self.links, &link, &self.limits, &self.log) {
            self.events.link(&link);
            self.links.push(link);
        }
        Ok(())
    }

    async fn hand_off(&mut self) -> wasmtime::Result<Result<progress::ExternalReport, String>> {
        if !self.hand_off {
            let text = "hand-off denied: the action does not grant capabilities.handOff";
            self.log.emit(LogLevel::Warn, text);
            return Ok(Err(text.into()));
        }
        Ok(self.events.hand_off().map(|h| progress::ExternalReport {
            url: h.url,
            token: h.token,
        }))
    }
}

bindings::answer_v0_1_with_v0_2!(progress: ProgressCtx);

struct HasProgress;

impl HasData for HasProgress {
    type Data<'a> = &'a mut ProgressCtx;
}

/// Links `progress` (every contract version) to the store state's [`ProgressCtx`].
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut ProgressCtx,
) -> wasmtime::Result<()> {
    progress::add_to_linker::<T, HasProgress>(linker, get)?;
    bindings::v0_1::portico::action::progress::add_to_linker::<T, HasProgress>(linker, get)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{HandOff, RecordedEvents};

    fn ctx(
        events: Arc<dyn RunEvents>,
        limits: Limits,
        hand_off: Option<HandOffGrant>,
    ) -> ProgressCtx {
        let log = Arc::new(LogSink::new(events.clone(), &limits));
        ProgressCtx::new(events, limits, hand_off, log)
    }

    fn link(title: &str) -> types::Link {
        types::Link {
            title: title.into(),
            url: "https://ci.example.com/1".into(),
        }
    }

    #[tokio::test]
    async fn reports_are_clamped_and_labels_cut() {
        let events = Arc::new(RecordedEvents::default());
        let limits = Limits {
            label_bytes: 64,
            ..Limits::default()
        };
        let mut ctx = ctx(events.clone(), limits, None);
        progress::Host::report(&mut ctx, Some(250), Some("x".repeat(100)))
            .await
            .unwrap();
        progress::Host::report(&mut ctx, None, None).await.unwrap();
        let reported = events.snapshot().progress;
        assert_eq!(reported[0].0, Some(100));
        let label = reported[0].1.as_deref().unwrap();
        assert!(label.len() <= 64 && label.starts_with("xxx"), "{label}");
        assert!(label.contains("limits.labelBytes"), "{label}");
        assert_eq!(reported[1], (None, None));
    }

    #[tokio::test]
    async fn links_past_the_limits_are_dropped_and_said_so() {
        let events = Arc::new(RecordedEvents::default());
        let limits = Limits {
            links: 1,
            link_bytes: 40,
            ..Limits::default()
        };
        let mut ctx = ctx(events.clone(), limits, None);
        for title in [&*"t".repeat(30), "pipeline", "second"] {
            progress::Host::add_link(&mut ctx, link(title))
                .await
                .unwrap();
        }
        let kept = ctx.take_links();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].title, "pipeline");
        assert_eq!(
            events.snapshot().links,
            kept,
            "only the link that fits is shown"
        );
        let text = events.log_text();
        assert!(text.contains("over limits.linkBytes (40)"), "{text}");
        assert!(
            text.contains("already has 1 links (limits.links)"),
            "{text}"
        );
    }

    struct Handing(RecordedEvents);

    impl RunEvents for Handing {
        fn log(&self, level: LogLevel, message: &str) {
            self.0.log(level, message);
        }
        fn progress(&self, percent: Option<u8>, label: Option<&str>) {
            self.0.progress(percent, label);
        }
        fn link(&self, link: &Link) {
            self.0.link(link);
        }
        fn hand_off(&self) -> Result<HandOff, String> {
            Ok(HandOff {
                url: "https://portico/v1/actions/runs/r1".into(),
                token: "t".into(),
            })
        }
    }

    #[tokio::test]
    async fn a_hand_off_needs_the_grant() {
        let events = Arc::new(Handing(RecordedEvents::default()));
        let mut denied = ctx(events.clone(), Limits::default(), None);
        let err = progress::Host::hand_off(&mut denied)
            .await
            .unwrap()
            .unwrap_err();
        assert!(err.contains("capabilities.handOff"), "{err}");
        assert!(events.0.log_text().contains("hand-off denied"));

        let grant = HandOffGrant {
            timeout_seconds: 60,
        };
        let mut granted = ctx(events, Limits::default(), Some(grant));
        let report = progress::Host::hand_off(&mut granted)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(report.url, "https://portico/v1/actions/runs/r1");
        assert!(HandOffGrant { timeout_seconds: 0 }.check().is_err());
        assert!(grant.check().is_ok());
    }
}
