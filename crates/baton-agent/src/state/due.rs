//! Which write a listener Lease's phase calls for now, and what lets it go out.

use tokio::time::Instant;

use super::{OpKind, Phase, Tracked};

/// What lets a write due now go out: acknowledgements may be sent, the registration current
/// now (0: none), releases may be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Gates {
    pub(super) may_ack: bool,
    pub(super) current: u64,
    pub(super) may_release: bool,
}

/// The request due for `t` at `now`, if one is (none while one is in flight).
pub(super) fn op_due(t: &Tracked, now: Instant, gates: Gates) -> Option<OpKind> {
    let Gates {
        may_ack,
        current,
        may_release,
    } = gates;
    if t.in_flight.is_some() || now < t.due {
        return None;
    }
    match t.phase {
        Phase::Acking | Phase::Lost if may_ack => Some(OpKind::Ack),
        // A running listener no registration covers is kept alive by its own Lease.
        Phase::Running | Phase::Stopping if (current == 0 || t.ack_reg != current) && may_ack => Some(OpKind::Renew),
        Phase::Releasing if may_release => Some(OpKind::Release),
        _ => None,
    }
}
