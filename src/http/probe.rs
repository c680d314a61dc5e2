//! `/readyz`: whether the directory answers, asked at most once a second whatever the call
//! rate. Each check was one LDAP operation: 16 callers made 38,478 in 10 s and slowed every
//! other request. Callers that arrive while a check runs wait for its answer.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::Backend;

/// How long one check's answer serves.
const FRESH: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Readiness {
    last: Mutex<Option<(Instant, bool)>>,
}

impl Readiness {
    /// Ready when every directory answers. Why one does not goes to the log only: the
    /// answer names no URL, DN or LDAP code, since the probe needs no credentials.
    pub async fn check(&self, directories: impl Iterator<Item = (&str, &Backend)>) -> bool {
        let mut last = self.last.lock().await;
        if let Some((at, ready)) = *last {
            if at.elapsed() < FRESH {
                return ready;
            }
        }
        let mut ready = true;
        for (target, directory) in directories {
            if let Err(e) = directory.ping().await {
                tracing::warn!(target_name = %target, error = %e, "readiness: the directory does not answer");
                ready = false;
                break;
            }
        }
        *last = Some((Instant::now(), ready));
        ready
    }
}
