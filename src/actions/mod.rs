//! What an operator does to a Rollout, shared by the CLI (`baton rollout …`) and the dashboard
//! (`baton dashboard`), so both judge, refuse and write alike:
//!
//! * [`judge`] — pure: the verdict, the phase word and header, whether a runtime action has
//!   anything to act on;
//! * [`runtime`] — promote, promote full, abort, retry (annotations, judged first), restart;
//! * [`spec`] — pause/resume, pin/unpin, undo, set image (conditional spec changes that record
//!   their cause);
//! * [`history`] — the revisions a Rollout owns and how they are shown.
//!
//! Each action answers with what it did (`rollout.baton.dev/web promoted`) or a [`CliError`]
//! in kubectl's words (the API server's refusal, e.g. a 403, keeps its HTTP status).
use kube::api::PatchParams;

use crate::session::CliError;

pub mod judge;
pub mod revision_log;
pub mod runtime;
pub mod spec;

/// The time an action's request annotation carries: RFC 3339 in UTC with all nine fraction
/// digits, so every request has the same shape whatever the clock's last digits were.
fn request_time() -> String {
    format!("{:.9}", jiff::Timestamp::now())
}

/// What an action did, as one line (`rollout.baton.dev/web promoted`), or why it did not.
pub type Done = Result<String, CliError>;

pub use crate::api::{CLI_MANAGER, DASHBOARD_MANAGER};

/// Who acts, as the Rollout records it: the field manager of the writes (the CHANGED-BY of
/// `history`) and the change cause of spec changes (the CLI's command line; what was clicked
/// in the dashboard).
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub manager: &'a str,
    pub cause: &'a str,
}

impl Actor<'_> {
    /// The patch parameters of this actor's writes.
    fn patch_params(&self) -> PatchParams {
        PatchParams {
            field_manager: Some(self.manager.into()),
            ..PatchParams::default()
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_request_time_always_has_nine_fraction_digits() {
        for _ in 0..50 {
            let t = super::request_time();
            let fraction = t.split_once('.').map(|(_, f)| f);
            assert_eq!(fraction.map(str::len), Some(10), "{t}");
            assert!(t.ends_with('Z'), "{t}");
            assert!(t.parse::<jiff::Timestamp>().is_ok(), "{t}");
        }
    }
}
