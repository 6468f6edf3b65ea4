//! Run states and the transitions between them.
//!
//! ```text
//! requested ─► initiated ─► runtime_build ─► workload_launch ─► running ─► completed
//!     │             └────────────┴─────────────────┴──────────────┴──► failed | cancelled
//!     ├─► rejected (DS, with a reason)
//!     └─► cancelled
//! ```

use crate::wire_enum;

/// The state of a run (a run request is a run in state `requested`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RunState {
    /// The AO asked for the run; waiting for the DS.
    Requested,
    /// The DS initiated it; waiting for the site's agent.
    Initiated,
    /// The agent is preparing the workload (package staged, verified, built).
    RuntimeBuild,
    /// The agent is attesting, obtaining keys and launching the workload.
    WorkloadLaunch,
    /// The algorithm is running.
    Running,
    /// Finished; outputs delivered.
    Completed,
    /// Ended with an error.
    Failed,
    /// Stopped by the DS (or withdrawn before initiation).
    Cancelled,
    /// Refused by the DS, with a reason.
    Rejected,
}
wire_enum!(RunState, "run state", {
    Requested => "requested",
    Initiated => "initiated",
    RuntimeBuild => "runtime_build",
    WorkloadLaunch => "workload_launch",
    Running => "running",
    Completed => "completed",
    Failed => "failed",
    Cancelled => "cancelled",
    Rejected => "rejected",
});

/// A state change that the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a run cannot go from {from} to {to}")]
pub struct TransitionError {
    /// The current state.
    pub from: RunState,
    /// The requested state.
    pub to: RunState,
}

impl RunState {
    /// The states in which a run holds its configuration: at most one run per configuration may
    /// be in one of these (an open request or an active run).
    pub const OPEN: &'static [RunState] = &[
        RunState::Requested,
        RunState::Initiated,
        RunState::RuntimeBuild,
        RunState::WorkloadLaunch,
        RunState::Running,
    ];

    /// Whether no further transition is possible.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            RunState::Completed | RunState::Failed | RunState::Cancelled | RunState::Rejected
        )
    }

    /// Whether the run holds its configuration (see [`Self::OPEN`]).
    pub const fn is_open(self) -> bool {
        !self.is_terminal()
    }

    /// Whether the run is executing at the site (initiated and not yet ended).
    pub const fn is_active(self) -> bool {
        matches!(
            self,
            RunState::Initiated
                | RunState::RuntimeBuild
                | RunState::WorkloadLaunch
                | RunState::Running
        )
    }

    /// The next stage in the happy path, if any.
    pub const fn next_stage(self) -> Option<RunState> {
        match self {
            RunState::Requested => Some(RunState::Initiated),
            RunState::Initiated => Some(RunState::RuntimeBuild),
            RunState::RuntimeBuild => Some(RunState::WorkloadLaunch),
            RunState::WorkloadLaunch => Some(RunState::Running),
            RunState::Running => Some(RunState::Completed),
            _ => None,
        }
    }

    /// Whether `self → to` is allowed.
    pub fn can_transition_to(self, to: RunState) -> bool {
        match (self, to) {
            (RunState::Requested, RunState::Rejected | RunState::Cancelled) => true,
            (from, RunState::Failed | RunState::Cancelled) => from.is_active(),
            (from, to) => from.next_stage() == Some(to),
        }
    }

    /// `Ok` when `self → to` is allowed, else the typed error.
    pub fn check_transition(self, to: RunState) -> Result<(), TransitionError> {
        if self.can_transition_to(to) {
            Ok(())
        } else {
            Err(TransitionError { from: self, to })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RunState::*;

    #[test]
    fn transition_table() {
        let allowed = [
            (Requested, Initiated),
            (Requested, Rejected),
            (Requested, Cancelled),
            (Initiated, RuntimeBuild),
            (RuntimeBuild, WorkloadLaunch),
            (WorkloadLaunch, Running),
            (Running, Completed),
            (Initiated, Failed),
            (RuntimeBuild, Failed),
            (WorkloadLaunch, Failed),
            (Running, Failed),
            (Initiated, Cancelled),
            (RuntimeBuild, Cancelled),
            (WorkloadLaunch, Cancelled),
            (Running, Cancelled),
        ];
        for &from in RunState::ALL {
            for &to in RunState::ALL {
                assert_eq!(
                    from.can_transition_to(to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
        assert_eq!(
            Completed.check_transition(Running),
            Err(TransitionError {
                from: Completed,
                to: Running
            })
        );
    }

    #[test]
    fn open_states() {
        for s in RunState::ALL {
            assert_eq!(RunState::OPEN.contains(s), s.is_open());
        }
        assert_eq!(
            serde_json::to_string(&RuntimeBuild).unwrap(),
            "\"runtime_build\""
        );
    }
}
