//! The background sweeper: fails runs whose agent stopped sending heartbeats, and removes
//! notifications older than 48 hours.
//!
//! The runs to watch are the ones in `ControlState`'s heartbeat map: an agent's claim puts its
//! run there (the claim time counts as the first heartbeat), each heartbeat or state report
//! refreshes it, and a run leaves it when it ends. At start the sweeper scans every project once
//! for runs that a site had claimed and that are still active (claimed before this server
//! started), giving each a full timeout from now.
//!
//! The map lives in this process: with several control-plane servers behind one database, each
//! one watches the runs whose agents talk to it.

use std::time::{Duration, Instant};

use sealroom_store::{NewAuditEntry, RunTransition, StoreError, Viewer};
use sealroom_types::{Actor, AuditOutcome, RunId, RunState, Timestamp};

use crate::ControlState;

/// The message of a run failed for want of heartbeats.
pub const HEARTBEAT_MESSAGE: &str = "the agent stopped sending heartbeats";
/// How often old notifications are purged.
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// Records a sign of life from a run's agent (claim, heartbeat, state report).
pub(crate) fn touch(state: &ControlState, run: RunId) {
    let mut map = state
        .inner
        .heartbeats
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    map.insert(run, Instant::now());
}

/// Stops watching a run (it ended).
pub(crate) fn forget(state: &ControlState, run: RunId) {
    let mut map = state
        .inner
        .heartbeats
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    map.remove(&run);
}

/// Starts the sweeper on the current tokio runtime. It ticks every quarter of the heartbeat
/// timeout (between 100 ms and 5 s) until the runtime shuts down or the handle is aborted.
pub fn spawn(state: ControlState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = startup_scan(&state).await {
            tracing::warn!(error = %e, "sweeper: could not scan for runs claimed before this start");
        }
        let tick = (state.config().heartbeat_timeout / 4)
            .clamp(Duration::from_millis(100), Duration::from_secs(5));
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_purge: Option<Instant> = None;
        loop {
            interval.tick().await;
            sweep_once(&state).await;
            if last_purge.is_none_or(|t| t.elapsed() >= PURGE_EVERY) {
                match state.store().purge_notifications(Timestamp::now()).await {
                    Ok(n) if n > 0 => tracing::info!(removed = n, "purged old notifications"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "purging notifications failed"),
                }
                last_purge = Some(Instant::now());
            }
        }
    })
}

/// Puts every claimed, still-active run in the heartbeat map (those not there already).
async fn startup_scan(state: &ControlState) -> Result<usize, StoreError> {
    let store = state.store();
    let mut found = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_projects(Viewer::Admin, after, 500).await?;
        for p in &page.items {
            for run in store.list_runs(p.id, None).await? {
                if run.site_id.is_some() && run.state.is_active() {
                    found.push(run.id);
                }
            }
        }
        match (page.items.last(), page.next_cursor) {
            (Some(last), Some(_)) => after = Some(last.id),
            _ => break,
        }
    }
    let now = Instant::now();
    let mut map = state
        .inner
        .heartbeats
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    for id in &found {
        map.entry(*id).or_insert(now);
    }
    Ok(found.len())
}

/// One pass: fails each watched run whose agent has been silent for longer than the timeout;
/// returns how many were failed.
pub async fn sweep_once(state: &ControlState) -> usize {
    let timeout = state.config().heartbeat_timeout;
    let stale: Vec<RunId> = {
        let map = state
            .inner
            .heartbeats
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.iter()
            .filter(|(_, at)| at.elapsed() > timeout)
            .map(|(id, _)| *id)
            .collect()
    };
    let mut failed = 0;
    for id in stale {
        match fail_if_silent(state, id, timeout).await {
            Ok(true) => failed += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(run = %id, error = %e, "sweeper: could not fail a silent run"),
        }
    }
    failed
}

async fn fail_if_silent(
    state: &ControlState,
    id: RunId,
    timeout: Duration,
) -> Result<bool, StoreError> {
    let run = match state.store().get_run(id).await {
        Ok(r) => r,
        Err(StoreError::NotFound { .. }) => {
            forget(state, id);
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    if !run.state.is_active() || run.site_id.is_none() {
        forget(state, id);
        return Ok(false);
    }
    // A heartbeat may have arrived since the snapshot.
    let still_stale = {
        let map = state
            .inner
            .heartbeats
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.get(&id).is_some_and(|at| at.elapsed() > timeout)
    };
    if !still_stale {
        return Ok(false);
    }
    let from = run.state;
    match state
        .store()
        .transition_run(
            RunTransition {
                run_id: id,
                to: RunState::Failed,
                actor: Actor::System,
                message: Some(HEARTBEAT_MESSAGE.to_string()),
            },
            Timestamp::now(),
        )
        .await
    {
        Ok(_) => {}
        // Changed meanwhile (completed, cancelled): look again next tick.
        Err(StoreError::InvalidTransition(_)) => return Ok(false),
        Err(e) => return Err(e),
    }
    forget(state, id);
    state
        .store()
        .append_audit(NewAuditEntry {
            actor: Actor::System,
            action: "run.fail".into(),
            outcome: AuditOutcome::Success,
            project_id: Some(run.project_id),
            object: Some(format!("run:{id}")),
            detail: serde_json::json!({
                "from": from,
                "reason": HEARTBEAT_MESSAGE,
                "timeout_secs": timeout.as_secs_f64(),
            }),
        })
        .await?;
    tracing::warn!(run = %id, "failed a run whose agent stopped sending heartbeats");
    Ok(true)
}
