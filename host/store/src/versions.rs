//! The action versions a store has committed. Versions are never changed nor deleted, so once
//! one is stored the runs that refer to it after need not write it again: a run's insert
//! writes its version only the first time this process sees it.

use crate::ActionVersion;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

/// The digests this store committed.
#[derive(Default)]
pub(crate) struct StoredVersions(Mutex<HashSet<String>>);

impl StoredVersions {
    /// `version` unless this store committed it already.
    pub(crate) fn to_write(
        &self,
        version: Option<&Arc<ActionVersion>>,
    ) -> Option<Arc<ActionVersion>> {
        let version = version?;
        let stored = self.lock().contains(&version.digest);
        (!stored).then(|| version.clone())
    }

    /// Remembers that `version` is committed.
    pub(crate) fn committed(&self, version: Option<&Arc<ActionVersion>>) {
        if let Some(v) = version {
            self.lock().insert(v.digest.clone());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
