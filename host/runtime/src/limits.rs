//! What one run may consume (`invocationMethod.limits`), and the error every grant and limit
//! check returns. At the bottom of the crate: every capability reads its limits from here.

use serde::{Deserialize, Serialize};

/// `invocationMethod.limits`: what one run may consume. Every field has a host default and a
/// host maximum ([`Limits::check`]); a plugin that reaches one is told which, by its field name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", default)]
pub struct Limits {
    /// Wall-clock time for the whole run, host calls included.
    pub timeout_seconds: u32,
    /// The plugin's linear memories and tables together.
    #[serde(rename = "memoryMiB")]
    pub memory_mib: u32,
    /// Log bytes kept (stdout, stderr and `log.emit` together, each line costing its bytes plus
    /// [`Limits::LOG_LINE_OVERHEAD`]); the rest is dropped and counted.
    pub log_bytes: u64,
    /// Log lines kept; the rest is dropped and counted.
    pub log_lines: u32,
    /// The size of the `output` JSON the plugin returns; a larger one fails the run.
    pub output_bytes: u64,
    /// The run's summary and failure text; longer text is cut with a marker.
    pub text_bytes: u32,
    /// Links a run may add (progress links and outcome links together).
    pub links: u32,
    /// The bytes of one link (title and URL); a longer one is refused.
    pub link_bytes: u32,
    /// Progress and status labels; longer ones are cut with a marker.
    pub label_bytes: u32,
    /// Bytes the run may keep in its `/scratch` folder; a write past it fails with no space.
    #[serde(rename = "scratchMiB")]
    pub scratch_mib: u32,
    /// Files and folders the run may create in `/scratch`.
    pub scratch_files: u32,
    /// Files the plugin may hold open at once.
    pub open_files: u32,
    /// Outgoing HTTP requests in the whole run.
    pub http_requests: u32,
    /// Outgoing HTTP requests in flight at once.
    pub http_concurrency: u32,
}

impl Limits {
    /// What each log line costs against `logBytes` on top of its text (its row, its framing):
    /// without it, millions of empty lines would be free.
    pub const LOG_LINE_OVERHEAD: u64 = 64;

    /// Checks every limit against its host maximum; `memory_max_mib` is the host's
    /// `max_memory_mib`.
    pub fn check(&self, memory_max_mib: u32) -> Result<(), GrantError> {
        // (field, value, min, max, note): zero means "none" where that makes sense; time, memory
        // and open files need at least one, and so does httpConcurrency (zero would make every
        // request wait for a slot until the run times out; httpRequests: 0 denies them).
        let bounds: [(&str, u64, u64, u64, &str); 14] = [
            (
                "timeoutSeconds",
                self.timeout_seconds.into(),
                1,
                24 * 3600,
                "",
            ),
            (
                "memoryMiB",
                self.memory_mib.into(),
                1,
                memory_max_mib.into(),
                " (the host's max_memory_mib)",
            ),
            ("logBytes", self.log_bytes, 0, 64 << 20, ""),
            ("logLines", self.log_lines.into(), 0, 1_000_000, ""),
            ("outputBytes", self.output_bytes, 0, 16 << 20, ""),
            ("textBytes", self.text_bytes.into(), 0, 64 << 10, ""),
            ("links", self.links.into(), 0, 1_000, ""),
            ("linkBytes", self.link_bytes.into(), 0, 64 << 10, ""),
            ("labelBytes", self.label_bytes.into(), 0, 4 << 10, ""),
            ("scratchMiB", self.scratch_mib.into(), 0, 4 << 10, ""),
            ("scratchFiles", self.scratch_files.into(), 0, 100_000, ""),
            ("openFiles", self.open_files.into(), 1, 1_024, ""),
            ("httpRequests", self.http_requests.into(), 0, 10_000, ""),
            ("httpConcurrency", self.http_concurrency.into(), 1, 64, ""),
        ];
        for (name, value, min, max, note) in bounds {
            if value < min || value > max {
                return Err(GrantError::new(
                    format!("limits.{name}"),
                    format!("must be between {min} and {max}{note}"),
                ));
            }
        }
        Ok(())
    }
}

/// `text` cut to at most `max` bytes (on a character boundary) with a marker naming the limit,
/// so whoever reads it knows it was cut and which limit to raise.
pub(crate) fn cut_text(text: String, max: u32, field: &str) -> String {
    let max = max as usize;
    if text.len() <= max {
        return text;
    }
    let marker = format!(" [cut: over limits.{field} ({max} bytes)]");
    let mut end = max.saturating_sub(marker.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = text[..end].to_owned();
    out.push_str(&marker);
    out
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout_seconds: 30,
            memory_mib: 64,
            log_bytes: 1 << 20,
            log_lines: 10_000,
            output_bytes: 1 << 20,
            text_bytes: 4 << 10,
            links: 100,
            link_bytes: 4 << 10,
            label_bytes: 256,
            scratch_mib: 64,
            scratch_files: 1_000,
            open_files: 64,
            http_requests: 100,
            http_concurrency: 8,
        }
    }
}

/// Why a grant or limit cannot be used; `path` names the field as the action spells it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct GrantError {
    /// E.g. `capabilities.http[0].url` or `limits.memoryMiB`.
    pub path: String,
    /// What is wrong and what would be accepted.
    pub reason: String,
}

impl GrantError {
    pub(crate) fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
