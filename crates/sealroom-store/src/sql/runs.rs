//! Run configurations, runs, their history, logs and outputs, and the notifications that run
//! events produce.

use async_trait::async_trait;
use sealroom_types::*;
use sqlx::query;

use super::artifacts::version_head_in_tx;
use super::projects::{description, ensure_writable, index_search, project_in_tx};
use super::rows::{self, R, RUN_COLS, RUN_CONFIG_COLS};
use super::{is_fk_violation, is_unique_violation, page_limit, SqlStore, WriteTx};
use crate::{
    NewKeyRelease, NewLogLine, NewRun, NewRunConfig, NewRunOutput, Result, RunStore, RunTransition,
    StoreError,
};

/// Longest stored log line, in bytes.
const MAX_LOG_LINE: usize = 16 * 1024;
/// Most lines per append.
const MAX_LOG_BATCH: usize = 1000;
/// Longest reason or message kept with a state change.
const MAX_REASON: usize = 2000;

async fn run_in_tx(tx: &mut WriteTx<'_>, id: RunId) -> Result<(Run, OrgId)> {
    let row = tx
        .opt(query(&format!("SELECT {RUN_COLS} FROM runs WHERE id = $1")).bind(id.to_string()))
        .await?
        .ok_or_else(|| StoreError::not_found("run", id))?;
    let org = R::new(&row, "runs").p("dataset_org_id")?;
    Ok((rows::run(&row)?, org))
}

async fn config_in_tx(tx: &mut WriteTx<'_>, id: RunConfigId) -> Result<RunConfig> {
    let row = tx
        .opt(
            query(&format!(
                "SELECT {RUN_CONFIG_COLS} FROM run_configs WHERE id = $1"
            ))
            .bind(id.to_string()),
        )
        .await?
        .ok_or_else(|| StoreError::not_found("run configuration", id))?;
    rows::run_config(&row)
}

/// The organization owning a version's artifact.
async fn owner_org_in_tx(tx: &mut WriteTx<'_>, artifact: ArtifactId) -> Result<OrgId> {
    let row = tx
        .one(query("SELECT owner_org_id FROM artifacts WHERE id = $1").bind(artifact.to_string()))
        .await?;
    R::new(&row, "artifacts").p("owner_org_id")
}

/// Refuses a dataset version whose URL expires within 24 hours of `now`.
async fn ensure_dataset_fresh(
    tx: &mut WriteTx<'_>,
    version: VersionId,
    now: Timestamp,
) -> Result<()> {
    let (_, _, _, expires) = version_head_in_tx(tx, version).await?;
    let expires_at = Timestamp::from_millis(expires.unwrap_or(0));
    if expires_at <= now.plus_secs(EXPIRY_MARGIN_SECS) {
        return Err(StoreError::DatasetUrlExpired {
            version_id: version,
            expires_at,
        });
    }
    Ok(())
}

/// Notifies every enabled user of the given organizations.
async fn notify(
    tx: &mut WriteTx<'_>,
    orgs: &[OrgId],
    project: ProjectId,
    run: RunId,
    kind: NotificationKind,
    message: &str,
) -> Result<()> {
    let now = Timestamp::now();
    for org in orgs {
        let users = tx
            .all(
                query("SELECT id FROM users WHERE org_id = $1 AND disabled = 0")
                    .bind(org.to_string()),
            )
            .await?;
        for u in &users {
            let uid: UserId = R::new(u, "users").p("id")?;
            tx.exec(
                query(
                    "INSERT INTO notifications (id, user_id, project_id, run_id, kind, message, created_at, read_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
                )
                .bind(NotificationId::new().to_string())
                .bind(uid.to_string())
                .bind(project.to_string())
                .bind(run.to_string())
                .bind(kind.as_str())
                .bind(message.to_owned())
                .bind(now.as_millis()),
            )
            .await?;
        }
    }
    Ok(())
}

async fn ao_org_in_tx(tx: &mut WriteTx<'_>, project: ProjectId) -> Result<Option<OrgId>> {
    let row = tx
        .opt(
            query("SELECT org_id FROM project_members WHERE project_id = $1 AND role = 'algorithm_owner'")
                .bind(project.to_string()),
        )
        .await?;
    row.map(|r| R::new(&r, "project_members").p("org_id"))
        .transpose()
}

async fn record_change(
    tx: &mut WriteTx<'_>,
    run: RunId,
    from: Option<RunState>,
    to: RunState,
    actor: &Actor,
    message: Option<&str>,
    at: Timestamp,
) -> Result<()> {
    let row = tx
        .one(
            query("SELECT COALESCE(MAX(seq), 0) AS s FROM run_state_changes WHERE run_id = $1")
                .bind(run.to_string()),
        )
        .await?;
    let seq = R::new(&row, "run_state_changes").i("s")? + 1;
    tx.exec(
        query(
            "INSERT INTO run_state_changes (run_id, seq, from_state, to_state, actor, message, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(run.to_string())
        .bind(seq)
        .bind(from.map(|f| f.as_str()))
        .bind(to.as_str())
        .bind(actor.to_string())
        .bind(message.map(str::to_owned))
        .bind(at.as_millis()),
    )
    .await?;
    Ok(())
}

fn bounded(s: Option<String>) -> Option<String> {
    s.map(|m| m.trim().chars().take(MAX_REASON).collect::<String>())
        .filter(|m| !m.is_empty())
}

#[async_trait]
impl RunStore for SqlStore {
    async fn create_run_config(&self, c: NewRunConfig, now: Timestamp) -> Result<RunConfig> {
        let desc = description(&c.description)?;
        let mut tx = self.write().await?;
        let p = project_in_tx(&mut tx, c.project_id).await?;
        ensure_writable(&p, "creating run configurations")?;
        let (ak, ap, a_art, _) = version_head_in_tx(&mut tx, c.algorithm_version_id).await?;
        if ap != c.project_id {
            return Err(StoreError::not_found(
                "artifact version",
                c.algorithm_version_id,
            ));
        }
        if ak != ArtifactKind::Algorithm {
            return Err(StoreError::invalid(
                "run configuration",
                format!("{} is not an algorithm version", c.algorithm_version_id),
            ));
        }
        let (dk, dp, d_art, _) = version_head_in_tx(&mut tx, c.dataset_version_id).await?;
        if dp != c.project_id {
            return Err(StoreError::not_found(
                "artifact version",
                c.dataset_version_id,
            ));
        }
        if dk != ArtifactKind::Dataset {
            return Err(StoreError::invalid(
                "run configuration",
                format!("{} is not a dataset version", c.dataset_version_id),
            ));
        }
        ensure_dataset_fresh(&mut tx, c.dataset_version_id, now).await?;
        let alg_type_row = tx
            .one(
                query("SELECT algorithm_type FROM artifacts WHERE id = $1").bind(a_art.to_string()),
            )
            .await?;
        let alg_type: AlgorithmType = R::new(&alg_type_row, "artifacts").p("algorithm_type")?;
        match c.criteria_version_id {
            None if alg_type == AlgorithmType::Validation => {
                return Err(StoreError::invalid(
                    "run configuration",
                    "a validation algorithm needs an accepted validation criteria version",
                ))
            }
            None => {}
            Some(cv) => {
                let (ck, cp, _, _) = version_head_in_tx(&mut tx, cv).await?;
                if cp != c.project_id {
                    return Err(StoreError::not_found("artifact version", cv));
                }
                if ck != ArtifactKind::ValidationCriteria {
                    return Err(StoreError::invalid(
                        "run configuration",
                        format!("{cv} is not a validation criteria version"),
                    ));
                }
                let ds_org = owner_org_in_tx(&mut tx, d_art).await?;
                let acc = tx
                    .opt(
                        query("SELECT at FROM criteria_acceptances WHERE version_id = $1 AND org_id = $2")
                            .bind(cv.to_string())
                            .bind(ds_org.to_string()),
                    )
                    .await?;
                if acc.is_none() {
                    return Err(StoreError::CriteriaNotAccepted(cv));
                }
            }
        }
        let rc = RunConfig {
            id: RunConfigId::new(),
            project_id: c.project_id,
            name: c.name.clone(),
            description: desc,
            algorithm_version_id: c.algorithm_version_id,
            dataset_version_id: c.dataset_version_id,
            criteria_version_id: c.criteria_version_id,
            created_by: c.created_by,
            created_at: Timestamp::now(),
        };
        let r = tx
            .exec(
                query(
                    "INSERT INTO run_configs (id, project_id, name, description, algorithm_version_id, \
                     dataset_version_id, criteria_version_id, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(rc.id.to_string())
                .bind(rc.project_id.to_string())
                .bind(rc.name.as_str().to_owned())
                .bind(rc.description.clone())
                .bind(rc.algorithm_version_id.to_string())
                .bind(rc.dataset_version_id.to_string())
                .bind(rc.criteria_version_id.map(|v| v.to_string()))
                .bind(rc.created_by.to_string())
                .bind(rc.created_at.as_millis()),
            )
            .await;
        match r {
            Err(e)
                if is_unique_violation(
                    &e,
                    &[
                        "run_configs_pair",
                        "run_configs.algorithm_version_id, run_configs.dataset_version_id",
                    ],
                ) =>
            {
                return Err(StoreError::DuplicateRunConfiguration)
            }
            Err(e) if is_fk_violation(&e) => {
                return Err(StoreError::not_found("user", rc.created_by))
            }
            r => r?,
        };
        index_search(
            &mut tx,
            SearchKind::RunConfig,
            &rc.id.to_string(),
            rc.project_id,
            rc.name.as_str(),
            &format!("{} {}", rc.name, rc.description),
        )
        .await?;
        tx.commit().await?;
        Ok(rc)
    }

    async fn get_run_config(&self, id: RunConfigId) -> Result<RunConfig> {
        let row = self
            .fetch_optional(
                query(&format!(
                    "SELECT {RUN_CONFIG_COLS} FROM run_configs WHERE id = $1"
                ))
                .bind(id.to_string()),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("run configuration", id))?;
        rows::run_config(&row)
    }

    async fn list_run_configs(&self, project: ProjectId) -> Result<Vec<RunConfig>> {
        self.fetch_all(
            query(&format!("SELECT {RUN_CONFIG_COLS} FROM run_configs WHERE project_id = $1 ORDER BY created_at, id"))
                .bind(project.to_string()),
        )
        .await?
        .iter()
        .map(rows::run_config)
        .collect()
    }

    async fn request_run(&self, n: NewRun) -> Result<Run> {
        let params_json = serde_json::to_string(&n.params)
            .map_err(|e| StoreError::invalid("parameters", e.to_string()))?;
        let mut tx = self.write().await?;
        let rc = config_in_tx(&mut tx, n.run_config_id).await?;
        let p = project_in_tx(&mut tx, rc.project_id).await?;
        if !p.state.allows_new_runs() {
            return Err(StoreError::ProjectNotActive {
                state: p.state,
                action: "requesting a run",
            });
        }
        if !p
            .technology
            .allows_compute(n.compute.vcpus, n.compute.ram_gib)
        {
            return Err(StoreError::InvalidComputeSize {
                technology: p.technology,
                vcpus: n.compute.vcpus,
                ram_gib: n.compute.ram_gib,
            });
        }
        let (_, _, d_art, _) = version_head_in_tx(&mut tx, rc.dataset_version_id).await?;
        let ds_org = owner_org_in_tx(&mut tx, d_art).await?;
        let now = Timestamp::now();
        let run = Run {
            id: RunId::new(),
            project_id: rc.project_id,
            run_config_id: rc.id,
            state: RunState::Requested,
            params: n.params,
            compute: n.compute,
            requested_by: n.requested_by,
            requested_at: now,
            initiated_by: None,
            reason: None,
            site_id: None,
            updated_at: now,
        };
        let r = tx
            .exec(
                query(
                    "INSERT INTO runs (id, project_id, run_config_id, state, params, vcpus, ram_gib, requested_by, \
                     requested_at, dataset_org_id, log_seq, updated_at) \
                     VALUES ($1, $2, $3, 'requested', $4, $5, $6, $7, $8, $9, 0, $8)",
                )
                .bind(run.id.to_string())
                .bind(run.project_id.to_string())
                .bind(run.run_config_id.to_string())
                .bind(params_json)
                .bind(i64::from(run.compute.vcpus))
                .bind(i64::from(run.compute.ram_gib))
                .bind(run.requested_by.to_string())
                .bind(now.as_millis())
                .bind(ds_org.to_string()),
            )
            .await;
        match r {
            Err(e)
                if is_unique_violation(&e, &["runs_one_open_per_config", "runs.run_config_id"]) =>
            {
                return Err(StoreError::RunAlreadyOpen(rc.id))
            }
            Err(e) if is_fk_violation(&e) => {
                return Err(StoreError::not_found("user", run.requested_by))
            }
            r => r?,
        };
        record_change(
            &mut tx,
            run.id,
            None,
            RunState::Requested,
            &Actor::User(run.requested_by),
            None,
            now,
        )
        .await?;
        notify(
            &mut tx,
            &[ds_org],
            run.project_id,
            run.id,
            NotificationKind::RunRequested,
            &format!(
                "Run requested on configuration \"{}\" in project \"{}\"",
                rc.name, p.name
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(run)
    }

    async fn transition_run(&self, t: RunTransition, now: Timestamp) -> Result<Run> {
        let mut tx = self.write().await?;
        let (run, ds_org) = run_in_tx(&mut tx, t.run_id).await?;
        run.state.check_transition(t.to)?;
        let p = project_in_tx(&mut tx, run.project_id).await?;
        let message = bounded(t.message);
        let mut initiated_by = run.initiated_by;
        match t.to {
            RunState::Initiated => {
                if !p.state.allows_new_runs() {
                    return Err(StoreError::ProjectNotActive {
                        state: p.state,
                        action: "initiating a run",
                    });
                }
                let rc = config_in_tx(&mut tx, run.run_config_id).await?;
                ensure_dataset_fresh(&mut tx, rc.dataset_version_id, now).await?;
                match &t.actor {
                    Actor::User(u) => initiated_by = Some(*u),
                    _ => {
                        return Err(StoreError::invalid(
                            "initiation",
                            "a run is initiated by a data steward user",
                        ))
                    }
                }
            }
            RunState::Rejected if message.is_none() => {
                return Err(StoreError::invalid("rejection", "a reason is required"));
            }
            _ => {}
        }
        let reason = match t.to {
            RunState::Rejected | RunState::Cancelled | RunState::Failed => message.clone(),
            _ => run.reason.clone(),
        };
        let n = tx
            .exec(
                query("UPDATE runs SET state = $1, updated_at = $2, reason = $3, initiated_by = $4 WHERE id = $5 AND state = $6")
                    .bind(t.to.as_str())
                    .bind(now.as_millis())
                    .bind(reason)
                    .bind(initiated_by.map(|u| u.to_string()))
                    .bind(run.id.to_string())
                    .bind(run.state.as_str()),
            )
            .await?;
        if n == 0 {
            // Changed by someone else since we read it.
            return Err(TransitionError {
                from: run.state,
                to: t.to,
            }
            .into());
        }
        record_change(
            &mut tx,
            run.id,
            Some(run.state),
            t.to,
            &t.actor,
            message.as_deref(),
            now,
        )
        .await?;
        let ao = ao_org_in_tx(&mut tx, run.project_id).await?;
        let rc_name = config_in_tx(&mut tx, run.run_config_id).await?.name;
        match t.to {
            RunState::Rejected => {
                let text = format!(
                    "Run request on \"{rc_name}\" was rejected: {}",
                    message.as_deref().unwrap_or("")
                );
                notify(
                    &mut tx,
                    ao.as_slice(),
                    run.project_id,
                    run.id,
                    NotificationKind::RunRejected,
                    &text,
                )
                .await?;
            }
            RunState::Completed | RunState::Failed => {
                let (kind, word) = if t.to == RunState::Completed {
                    (NotificationKind::RunCompleted, "completed")
                } else {
                    (NotificationKind::RunFailed, "failed")
                };
                let mut orgs: Vec<OrgId> = ao.into_iter().collect();
                if !orgs.contains(&ds_org) {
                    orgs.push(ds_org);
                }
                let text = format!("Run on \"{rc_name}\" {word}");
                notify(&mut tx, &orgs, run.project_id, run.id, kind, &text).await?;
            }
            _ => {}
        }
        let (run, _) = run_in_tx(&mut tx, run.id).await?;
        tx.commit().await?;
        Ok(run)
    }

    async fn claim_run(&self, site: SiteId) -> Result<Option<Run>> {
        let mut tx = self.write().await?;
        let row = tx
            .opt(query("SELECT org_id FROM sites WHERE id = $1").bind(site.to_string()))
            .await?
            .ok_or_else(|| StoreError::not_found("site", site))?;
        let org: OrgId = R::new(&row, "sites").p("org_id")?;
        let row = tx
            .opt(
                query(&format!(
                    "UPDATE runs SET site_id = $1, updated_at = $2 WHERE id = \
                     (SELECT id FROM runs WHERE dataset_org_id = $3 AND state = 'initiated' AND site_id IS NULL \
                      ORDER BY updated_at, id LIMIT 1) AND site_id IS NULL RETURNING {RUN_COLS}"
                ))
                .bind(site.to_string())
                .bind(Timestamp::now().as_millis())
                .bind(org.to_string()),
            )
            .await?;
        let run = row.as_ref().map(rows::run).transpose()?;
        tx.commit().await?;
        Ok(run)
    }

    async fn get_run(&self, id: RunId) -> Result<Run> {
        let row = self
            .fetch_optional(
                query(&format!("SELECT {RUN_COLS} FROM runs WHERE id = $1")).bind(id.to_string()),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("run", id))?;
        rows::run(&row)
    }

    async fn list_runs(&self, project: ProjectId, config: Option<RunConfigId>) -> Result<Vec<Run>> {
        let rows = match config {
            Some(c) => {
                self.fetch_all(
                    query(&format!(
                        "SELECT {RUN_COLS} FROM runs WHERE project_id = $1 AND run_config_id = $2 ORDER BY requested_at DESC, id DESC"
                    ))
                    .bind(project.to_string())
                    .bind(c.to_string()),
                )
                .await?
            }
            None => {
                self.fetch_all(
                    query(&format!("SELECT {RUN_COLS} FROM runs WHERE project_id = $1 ORDER BY requested_at DESC, id DESC"))
                        .bind(project.to_string()),
                )
                .await?
            }
        };
        rows.iter().map(rows::run).collect()
    }

    async fn run_history(&self, run: RunId) -> Result<Vec<RunStateChange>> {
        self.fetch_all(
            query("SELECT run_id, seq, from_state, to_state, actor, message, at FROM run_state_changes WHERE run_id = $1 ORDER BY seq")
                .bind(run.to_string()),
        )
        .await?
        .iter()
        .map(|row| {
            let r = R::new(row, "run_state_changes");
            Ok(RunStateChange {
                run_id: r.p("run_id")?,
                seq: r.i("seq")?,
                from: r.op("from_state")?,
                to: r.p("to_state")?,
                actor: r.p("actor")?,
                message: r.os("message")?,
                at: r.ts("at")?,
            })
        })
        .collect()
    }

    async fn append_run_logs(&self, run: RunId, lines: Vec<NewLogLine>) -> Result<i64> {
        if lines.len() > MAX_LOG_BATCH {
            return Err(StoreError::invalid(
                "logs",
                format!("at most {MAX_LOG_BATCH} lines per call"),
            ));
        }
        let mut tx = self.write().await?;
        let n = lines.len() as i64;
        let row = tx
            .opt(
                query("UPDATE runs SET log_seq = log_seq + $1 WHERE id = $2 RETURNING log_seq")
                    .bind(n)
                    .bind(run.to_string()),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("run", run))?;
        let last = R::new(&row, "runs").i("log_seq")?;
        for (i, l) in lines.into_iter().enumerate() {
            let mut line = l.line;
            if line.len() > MAX_LOG_LINE {
                let mut cut = MAX_LOG_LINE;
                while !line.is_char_boundary(cut) {
                    cut -= 1;
                }
                line.truncate(cut);
            }
            tx.exec(
                query("INSERT INTO run_logs (run_id, seq, stream, at, line) VALUES ($1, $2, $3, $4, $5)")
                    .bind(run.to_string())
                    .bind(last - n + 1 + i as i64)
                    .bind(l.stream.as_str())
                    .bind(l.at.as_millis())
                    .bind(line),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(last)
    }

    async fn run_logs(
        &self,
        run: RunId,
        streams: &[LogStream],
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<RunLogLine>> {
        if streams.is_empty() {
            return Ok(Vec::new());
        }
        // Stream names are fixed identifiers, safe to inline.
        let list = streams
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        self.fetch_all(
            query(&format!(
                "SELECT seq, stream, at, line FROM run_logs WHERE run_id = $1 AND seq > $2 AND stream IN ({list}) ORDER BY seq LIMIT $3"
            ))
            .bind(run.to_string())
            .bind(after_seq)
            .bind(page_limit(limit)),
        )
        .await?
        .iter()
        .map(|row| {
            let r = R::new(row, "run_logs");
            Ok(RunLogLine {
                seq: r.i("seq")?,
                stream: r.p("stream")?,
                at: r.ts("at")?,
                line: r.s("line")?,
            })
        })
        .collect()
    }

    async fn add_run_output(&self, o: NewRunOutput) -> Result<RunOutput> {
        let out = RunOutput {
            run_id: o.run_id,
            kind: o.kind,
            name: o.name.chars().take(200).collect(),
            blob: o.blob,
            passed_criteria: o.passed_criteria,
            created_at: Timestamp::now(),
        };
        let mut tx = self.write().await?;
        let r = tx
            .exec(
                query(
                    "INSERT INTO run_outputs (run_id, kind, name, blob_key, blob_size, blob_sha256, file_name, passed_criteria, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(out.run_id.to_string())
                .bind(out.kind.as_str())
                .bind(out.name.clone())
                .bind(out.blob.key.clone())
                .bind(out.blob.size)
                .bind(out.blob.sha256.clone())
                .bind(out.blob.file_name.clone())
                .bind(out.passed_criteria.map(i64::from))
                .bind(out.created_at.as_millis()),
            )
            .await;
        match r {
            Err(e) if is_fk_violation(&e) => return Err(StoreError::not_found("run", out.run_id)),
            Err(e)
                if is_unique_violation(
                    &e,
                    &[
                        "run_outputs_pkey",
                        "run_outputs.run_id, run_outputs.kind, run_outputs.name",
                    ],
                ) =>
            {
                return Err(StoreError::AlreadyExists {
                    what: "run output",
                    detail: out.name,
                })
            }
            r => r?,
        };
        tx.commit().await?;
        Ok(out)
    }

    async fn run_outputs(&self, run: RunId) -> Result<Vec<RunOutput>> {
        self.fetch_all(
            query(
                "SELECT run_id, kind, name, blob_key, blob_size, blob_sha256, file_name, passed_criteria, created_at \
                 FROM run_outputs WHERE run_id = $1 ORDER BY created_at, kind, name",
            )
            .bind(run.to_string()),
        )
        .await?
        .iter()
        .map(|row| {
            let r = R::new(row, "run_outputs");
            Ok(RunOutput {
                run_id: r.p("run_id")?,
                kind: r.p("kind")?,
                name: r.s("name")?,
                blob: rows::blob_ref(&r)?.ok_or_else(|| StoreError::Corrupt {
                    table: "run_outputs",
                    column: "blob_key".into(),
                    detail: "missing".into(),
                })?,
                passed_criteria: r.oflag("passed_criteria")?,
                created_at: r.ts("created_at")?,
            })
        })
        .collect()
    }

    async fn issue_release_nonce(
        &self,
        run: RunId,
        nonce_sha256: &str,
        expires_at: Timestamp,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        let (r, _) = run_in_tx(&mut tx, run).await?;
        if r.state != RunState::WorkloadLaunch {
            return Err(StoreError::invalid(
                "key release",
                format!("run {run} is {}, not workload_launch", r.state),
            ));
        }
        let res = tx
            .exec(
                query(
                    "INSERT INTO release_nonces (nonce_hash, run_id, created_at, expires_at, used_at) \
                     VALUES ($1, $2, $3, $4, NULL)",
                )
                .bind(nonce_sha256.to_ascii_lowercase())
                .bind(run.to_string())
                .bind(Timestamp::now().as_millis())
                .bind(expires_at.as_millis()),
            )
            .await;
        match res {
            Err(e)
                if is_unique_violation(
                    &e,
                    &["release_nonces_pkey", "release_nonces.nonce_hash"],
                ) =>
            {
                return Err(StoreError::AlreadyExists {
                    what: "nonce",
                    detail: "nonce".into(),
                })
            }
            r => r?,
        };
        tx.commit().await
    }

    async fn consume_release_nonce(
        &self,
        run: RunId,
        nonce_sha256: &str,
        now: Timestamp,
    ) -> Result<bool> {
        let mut tx = self.write().await?;
        let n = tx
            .exec(
                query(
                    "UPDATE release_nonces SET used_at = $1 \
                     WHERE nonce_hash = $2 AND run_id = $3 AND used_at IS NULL AND expires_at > $1",
                )
                .bind(now.as_millis())
                .bind(nonce_sha256.to_ascii_lowercase())
                .bind(run.to_string()),
            )
            .await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    async fn record_key_release(&self, k: NewKeyRelease) -> Result<KeyRelease> {
        let mut tx = self.write().await?;
        let (r, _) = run_in_tx(&mut tx, k.run_id).await?;
        if r.state != RunState::WorkloadLaunch {
            return Err(StoreError::invalid(
                "key release",
                format!("run {} is {}, not workload_launch", k.run_id, r.state),
            ));
        }
        let p = project_in_tx(&mut tx, r.project_id).await?;
        if p.technology != k.technology {
            return Err(StoreError::invalid(
                "key release",
                format!(
                    "evidence is {}, the project is {}",
                    k.technology, p.technology
                ),
            ));
        }
        let row = tx
            .one(
                query("SELECT COALESCE(MAX(seq), 0) AS s FROM run_key_releases WHERE run_id = $1")
                    .bind(k.run_id.to_string()),
            )
            .await?;
        let rel = KeyRelease {
            run_id: k.run_id,
            seq: R::new(&row, "run_key_releases").i("s")? + 1,
            technology: k.technology,
            evidence_sha256: k.evidence_sha256,
            evidence_blob_key: k.evidence_blob_key,
            measurement: k.measurement,
            tcb_status: k.tcb_status,
            workload_digest: k.workload_digest,
            roles: k.roles,
            wcek_fingerprints: k.wcek_fingerprints,
            at: Timestamp::now(),
        };
        tx.exec(
            query(
                "INSERT INTO run_key_releases (run_id, seq, technology, evidence_sha256, evidence_blob_key, \
                 measurement, tcb_status, workload_digest, roles, wcek_fingerprints, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(rel.run_id.to_string())
            .bind(rel.seq)
            .bind(rel.technology.as_str())
            .bind(rel.evidence_sha256.clone())
            .bind(rel.evidence_blob_key.clone())
            .bind(rel.measurement.clone())
            .bind(rel.tcb_status.clone())
            .bind(rel.workload_digest.clone())
            .bind(serde_json::json!(rel.roles).to_string())
            .bind(serde_json::json!(rel.wcek_fingerprints).to_string())
            .bind(rel.at.as_millis()),
        )
        .await?;
        tx.commit().await?;
        Ok(rel)
    }

    async fn key_releases(&self, run: RunId) -> Result<Vec<KeyRelease>> {
        self.fetch_all(
            query(
                "SELECT run_id, seq, technology, evidence_sha256, evidence_blob_key, measurement, tcb_status, \
                 workload_digest, roles, wcek_fingerprints, at FROM run_key_releases WHERE run_id = $1 ORDER BY seq",
            )
            .bind(run.to_string()),
        )
        .await?
        .iter()
        .map(|row| {
            let r = R::new(row, "run_key_releases");
            let parse = |col: &str| -> Result<serde_json::Value> {
                serde_json::from_str(&r.s(col)?).map_err(|e| StoreError::Corrupt {
                    table: "run_key_releases",
                    column: col.into(),
                    detail: e.to_string(),
                })
            };
            let corrupt = |col: &str, e: serde_json::Error| StoreError::Corrupt {
                table: "run_key_releases",
                column: col.into(),
                detail: e.to_string(),
            };
            Ok(KeyRelease {
                run_id: r.p("run_id")?,
                seq: r.i("seq")?,
                technology: r.p("technology")?,
                evidence_sha256: r.s("evidence_sha256")?,
                evidence_blob_key: r.os("evidence_blob_key")?,
                measurement: r.s("measurement")?,
                tcb_status: r.s("tcb_status")?,
                workload_digest: r.s("workload_digest")?,
                roles: serde_json::from_value(parse("roles")?).map_err(|e| corrupt("roles", e))?,
                wcek_fingerprints: serde_json::from_value(parse("wcek_fingerprints")?)
                    .map_err(|e| corrupt("wcek_fingerprints", e))?,
                at: r.ts("at")?,
            })
        })
        .collect()
    }
}
