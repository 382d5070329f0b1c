//! The one rule for a running execution that comes back without a result (released by its
//! worker or found with an expired lease), as a pure function shared by every backend and
//! table-tested once.

use crate::ReleaseReason;
use voidrunner_domain::Timestamp;

/// What happens to a running execution that goes back (released or lease expired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleasePlan {
    /// Back to `queued`; `refund` gives the attempt back (shutdown drain).
    Requeue {
        /// Earliest next claim.
        run_after: Timestamp,
        /// Do not count this attempt.
        refund: bool,
        /// Recorded as `last_error`.
        error: Option<String>,
    },
    /// Attempts used up.
    DeadLetter {
        /// Recorded as `last_error` and in the `sandbox_error` verdict.
        error: String,
    },
    /// A user asked to cancel it while it ran: it must not run again.
    Cancel,
}

/// The one release rule: a cancel request wins, a shutdown always re-queues without using
/// the attempt, a failure re-queues until `attempt >= max_attempts`, then dead-letters.
pub fn release_plan(
    attempt: i64,
    max_attempts: i64,
    cancel_requested: bool,
    reason: ReleaseReason,
    now: Timestamp,
) -> ReleasePlan {
    if cancel_requested {
        return ReleasePlan::Cancel;
    }
    match reason {
        ReleaseReason::Shutdown => ReleasePlan::Requeue {
            run_after: now,
            refund: true,
            error: None,
        },
        ReleaseReason::Failure { error, .. } if attempt >= max_attempts => {
            ReleasePlan::DeadLetter { error }
        }
        ReleaseReason::Failure { error, retry_at } => ReleasePlan::Requeue {
            run_after: retry_at,
            refund: false,
            error: Some(error),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_plan_table() {
        let now = crate::now();
        let later = now + chrono::Duration::seconds(5);
        let fail = || ReleaseReason::Failure {
            error: "boom".into(),
            retry_at: later,
        };
        assert_eq!(
            release_plan(1, 3, false, fail(), now),
            ReleasePlan::Requeue {
                run_after: later,
                refund: false,
                error: Some("boom".into())
            }
        );
        assert_eq!(
            release_plan(3, 3, false, fail(), now),
            ReleasePlan::DeadLetter {
                error: "boom".into()
            }
        );
        assert_eq!(
            release_plan(3, 3, false, ReleaseReason::Shutdown, now),
            ReleasePlan::Requeue {
                run_after: now,
                refund: true,
                error: None
            }
        );
        assert_eq!(release_plan(3, 3, true, fail(), now), ReleasePlan::Cancel);
        assert_eq!(
            release_plan(1, 3, true, ReleaseReason::Shutdown, now),
            ReleasePlan::Cancel
        );
    }
}
