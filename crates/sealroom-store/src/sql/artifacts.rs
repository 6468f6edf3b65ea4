//! Artifacts and versions.

use async_trait::async_trait;
use sealroom_types::*;
use sqlx::any::AnyRow;
use sqlx::query;

use super::projects::{description, ensure_writable, index_search, project_in_tx, role_in_tx};
use super::rows::{self, ARTIFACT_COLS, R};
use super::{is_fk_violation, is_unique_violation, SqlStore, WriteTx};
use crate::{ArtifactStore, NewArtifact, NewVersion, NewVersionDetail, Result, StoreError};

pub(crate) const VERSION_COLS: &str =
    "id, artifact_id, project_id, kind, version, tag, description, \
     uploaded_by, created_at, blob_key, blob_size, blob_sha256, file_name, algorithm_type, \
     workload_digest, wcek_fingerprint, criteria_json, dataset_url, url_kind, url_expires_at, \
     certified_by, certified_at, data_spec_version_id, attestation_version_id";

/// A version row plus its upload steps and acceptances.
fn version(
    row: &AnyRow,
    steps: Vec<UploadStepState>,
    acc: Vec<CriteriaAcceptance>,
) -> Result<ArtifactVersion> {
    let r = R::new(row, "artifact_versions");
    let kind: ArtifactKind = r.p("kind")?;
    let detail = match kind {
        ArtifactKind::DataSpecification => VersionDetail::DataSpecification,
        ArtifactKind::AttestationReport => VersionDetail::AttestationReport {
            data_specification_version: r.op("data_spec_version_id")?,
        },
        ArtifactKind::Algorithm => VersionDetail::Algorithm {
            algorithm_type: r.p("algorithm_type")?,
            upload_steps: steps,
            workload_digest: r.os("workload_digest")?,
            wcek_fingerprint: r.os("wcek_fingerprint")?,
        },
        ArtifactKind::ValidationCriteria => VersionDetail::ValidationCriteria {
            criteria_json: r.s("criteria_json")?,
            acceptances: acc,
        },
        ArtifactKind::Dataset => VersionDetail::Dataset {
            location: DatasetLocation {
                url: r.s("dataset_url")?,
                url_kind: r.p("url_kind")?,
                expires_at: r.ts("url_expires_at")?,
            },
            certification: match (r.op::<UserId>("certified_by")?, r.ots("certified_at")?) {
                (Some(by), Some(at)) => Some(Certification { by, at }),
                _ => None,
            },
            data_specification_version: r.op("data_spec_version_id")?,
            attestation_report_version: r.op("attestation_version_id")?,
            wcek_fingerprint: r.os("wcek_fingerprint")?,
        },
    };
    Ok(ArtifactVersion {
        id: r.p("id")?,
        artifact_id: r.p("artifact_id")?,
        project_id: r.p("project_id")?,
        version: r.i("version")?,
        tag: {
            let t = r.s("tag")?;
            VersionTag::parse(&t).map_err(|e| StoreError::Corrupt {
                table: "artifact_versions",
                column: "tag".into(),
                detail: e.to_string(),
            })?
        },
        description: r.s("description")?,
        uploaded_by: r.p("uploaded_by")?,
        created_at: r.ts("created_at")?,
        blob: rows::blob_ref(&r)?,
        detail,
    })
}

fn step(row: &AnyRow) -> Result<UploadStepState> {
    let r = R::new(row, "upload_steps");
    Ok(UploadStepState {
        step: r.p("step")?,
        status: r.p("status")?,
        message: r.os("message")?,
        at: r.ts("at")?,
    })
}

fn acceptance(row: &AnyRow) -> Result<CriteriaAcceptance> {
    let r = R::new(row, "criteria_acceptances");
    Ok(CriteriaAcceptance {
        org_id: r.p("org_id")?,
        by: r.p("user_id")?,
        at: r.ts("at")?,
    })
}

/// (kind, project, artifact) of a version, inside a transaction.
pub(crate) async fn version_head_in_tx(
    tx: &mut WriteTx<'_>,
    id: VersionId,
) -> Result<(ArtifactKind, ProjectId, ArtifactId, Option<i64>)> {
    let row = tx
        .opt(
            query("SELECT kind, project_id, artifact_id, url_expires_at FROM artifact_versions WHERE id = $1")
                .bind(id.to_string()),
        )
        .await?
        .ok_or_else(|| StoreError::not_found("artifact version", id))?;
    let r = R::new(&row, "artifact_versions");
    Ok((
        r.p("kind")?,
        r.p("project_id")?,
        r.p("artifact_id")?,
        r.oi("url_expires_at")?,
    ))
}

/// Checks that a linked version exists in `project` and is of `kind`.
async fn check_link(
    tx: &mut WriteTx<'_>,
    id: Option<VersionId>,
    project: ProjectId,
    kind: ArtifactKind,
) -> Result<()> {
    let Some(id) = id else { return Ok(()) };
    let (k, p, _, _) = version_head_in_tx(tx, id).await?;
    if p != project {
        return Err(StoreError::not_found("artifact version", id));
    }
    if k != kind {
        return Err(StoreError::invalid(
            "link",
            format!("version {id} is a {k}, not a {kind}"),
        ));
    }
    Ok(())
}

impl SqlStore {
    async fn artifact_in_tx(&self, tx: &mut WriteTx<'_>, id: ArtifactId) -> Result<Artifact> {
        let row = tx
            .opt(
                query(&format!(
                    "SELECT {ARTIFACT_COLS} FROM artifacts WHERE id = $1"
                ))
                .bind(id.to_string()),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("artifact", id))?;
        rows::artifact(&row)
    }

    async fn versions_where(&self, clause: &str, arg: String) -> Result<Vec<ArtifactVersion>> {
        let rows = self
            .fetch_all(
                query(&format!("SELECT {VERSION_COLS} FROM artifact_versions WHERE {clause} ORDER BY artifact_id, version"))
                    .bind(arg.clone()),
            )
            .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let sub = format!("SELECT id FROM artifact_versions WHERE {clause}");
        let steps = self
            .fetch_all(
                query(&format!(
                    "SELECT version_id, step, status, message, at FROM upload_steps WHERE version_id IN ({sub}) ORDER BY version_id, step"
                ))
                .bind(arg.clone()),
            )
            .await?;
        let accs = self
            .fetch_all(
                query(&format!(
                    "SELECT version_id, org_id, user_id, at FROM criteria_acceptances WHERE version_id IN ({sub}) ORDER BY at"
                ))
                .bind(arg),
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let id = R::new(row, "artifact_versions").s("id")?;
            let mut st = Vec::new();
            for s in steps.iter().filter(|s| {
                R::new(s, "upload_steps").s("version_id").ok().as_deref() == Some(id.as_str())
            }) {
                st.push(step(s)?);
            }
            st.sort_by_key(|s| UploadStep::ALL.iter().position(|x| *x == s.step));
            let mut ac = Vec::new();
            for a in accs.iter().filter(|a| {
                R::new(a, "criteria_acceptances")
                    .s("version_id")
                    .ok()
                    .as_deref()
                    == Some(id.as_str())
            }) {
                ac.push(acceptance(a)?);
            }
            out.push(version(row, st, ac)?);
        }
        Ok(out)
    }
}

#[async_trait]
impl ArtifactStore for SqlStore {
    async fn create_artifact(&self, a: NewArtifact) -> Result<Artifact> {
        let desc = description(&a.description)?;
        if (a.kind == ArtifactKind::Algorithm) != a.algorithm_type.is_some() {
            return Err(StoreError::invalid(
                "artifact",
                "algorithms need a type (training or validation); other kinds have none",
            ));
        }
        let mut tx = self.write().await?;
        let p = project_in_tx(&mut tx, a.project_id).await?;
        ensure_writable(&p, "adding artifacts")?;
        let role = role_in_tx(&mut tx, a.project_id, a.owner_org_id).await?;
        if role != Some(a.kind.owner_role()) {
            return Err(StoreError::invalid(
                "artifact owner",
                format!(
                    "a {} belongs to the project's {}",
                    a.kind,
                    a.kind.owner_role()
                ),
            ));
        }
        let art = Artifact {
            id: ArtifactId::new(),
            project_id: a.project_id,
            kind: a.kind,
            owner_org_id: a.owner_org_id,
            name: a.name.clone(),
            description: desc,
            algorithm_type: a.algorithm_type,
            created_by: a.created_by,
            created_at: Timestamp::now(),
            latest_version: 0,
        };
        let r = tx
            .exec(
                query(
                    "INSERT INTO artifacts (id, project_id, kind, owner_org_id, name, name_key, description, \
                     algorithm_type, created_by, created_at, latest_version) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0)",
                )
                .bind(art.id.to_string())
                .bind(art.project_id.to_string())
                .bind(art.kind.as_str())
                .bind(art.owner_org_id.to_string())
                .bind(art.name.as_str().to_owned())
                .bind(art.name.as_str().to_lowercase())
                .bind(art.description.clone())
                .bind(art.algorithm_type.map(|t| t.as_str()))
                .bind(art.created_by.to_string())
                .bind(art.created_at.as_millis()),
            )
            .await;
        match r {
            Err(e)
                if is_unique_violation(
                    &e,
                    &[
                        "artifacts_name",
                        "artifacts.project_id, artifacts.kind, artifacts.name_key",
                    ],
                ) =>
            {
                return Err(StoreError::AlreadyExists {
                    what: "artifact",
                    detail: art.name.to_string(),
                })
            }
            Err(e) if is_fk_violation(&e) => {
                return Err(StoreError::not_found("user", art.created_by))
            }
            r => r?,
        };
        index_search(
            &mut tx,
            SearchKind::Artifact,
            &art.id.to_string(),
            art.project_id,
            art.name.as_str(),
            &format!("{} {} {}", art.name, art.description, art.kind),
        )
        .await?;
        tx.commit().await?;
        Ok(art)
    }

    async fn get_artifact(&self, id: ArtifactId) -> Result<Artifact> {
        let row = self
            .fetch_optional(
                query(&format!(
                    "SELECT {ARTIFACT_COLS} FROM artifacts WHERE id = $1"
                ))
                .bind(id.to_string()),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("artifact", id))?;
        rows::artifact(&row)
    }

    async fn list_artifacts(
        &self,
        project: ProjectId,
        kind: Option<ArtifactKind>,
    ) -> Result<Vec<Artifact>> {
        let rows = match kind {
            Some(k) => {
                self.fetch_all(
                    query(&format!(
                        "SELECT {ARTIFACT_COLS} FROM artifacts WHERE project_id = $1 AND kind = $2 ORDER BY created_at, id"
                    ))
                    .bind(project.to_string())
                    .bind(k.as_str()),
                )
                .await?
            }
            None => {
                self.fetch_all(
                    query(&format!(
                        "SELECT {ARTIFACT_COLS} FROM artifacts WHERE project_id = $1 ORDER BY created_at, id"
                    ))
                    .bind(project.to_string()),
                )
                .await?
            }
        };
        rows.iter().map(rows::artifact).collect()
    }

    async fn add_version(&self, v: NewVersion) -> Result<ArtifactVersion> {
        let desc = description(&v.description)?;
        // Read what the URL says before taking the write lock.
        let url_expiry = match &v.detail {
            NewVersionDetail::Dataset { url, .. } => Some(parse_url_expiry(url)?),
            _ => None,
        };
        if let NewVersionDetail::ValidationCriteria { criteria_json } = &v.detail {
            if criteria_json.len() > 1 << 20 {
                return Err(StoreError::invalid("criteria", "larger than 1 MiB"));
            }
        }
        let mut tx = self.write().await?;
        let art = self.artifact_in_tx(&mut tx, v.artifact_id).await?;
        let p = project_in_tx(&mut tx, art.project_id).await?;
        ensure_writable(&p, "adding versions")?;
        let detail_kind = match &v.detail {
            NewVersionDetail::DataSpecification => ArtifactKind::DataSpecification,
            NewVersionDetail::AttestationReport { .. } => ArtifactKind::AttestationReport,
            NewVersionDetail::Algorithm { .. } => ArtifactKind::Algorithm,
            NewVersionDetail::ValidationCriteria { .. } => ArtifactKind::ValidationCriteria,
            NewVersionDetail::Dataset { .. } => ArtifactKind::Dataset,
        };
        if detail_kind != art.kind {
            return Err(StoreError::invalid(
                "version",
                format!(
                    "artifact {} is a {}, not a {}",
                    art.id, art.kind, detail_kind
                ),
            ));
        }
        let (mut spec, mut attest, mut wfp, mut crit, mut url) = (None, None, None, None, None);
        match &v.detail {
            NewVersionDetail::DataSpecification => {}
            NewVersionDetail::AttestationReport {
                data_specification_version,
            } => {
                check_link(
                    &mut tx,
                    *data_specification_version,
                    art.project_id,
                    ArtifactKind::DataSpecification,
                )
                .await?;
                spec = *data_specification_version;
            }
            NewVersionDetail::Algorithm { wcek_fingerprint } => wfp = wcek_fingerprint.clone(),
            NewVersionDetail::ValidationCriteria { criteria_json } => {
                crit = Some(criteria_json.clone())
            }
            NewVersionDetail::Dataset {
                url: u,
                data_specification_version,
                attestation_report_version,
                wcek_fingerprint,
            } => {
                check_link(
                    &mut tx,
                    *data_specification_version,
                    art.project_id,
                    ArtifactKind::DataSpecification,
                )
                .await?;
                check_link(
                    &mut tx,
                    *attestation_report_version,
                    art.project_id,
                    ArtifactKind::AttestationReport,
                )
                .await?;
                spec = *data_specification_version;
                attest = *attestation_report_version;
                wfp = wcek_fingerprint.clone();
                url = Some(u.clone());
            }
        }
        let row = tx
            .one(
                query("UPDATE artifacts SET latest_version = latest_version + 1 WHERE id = $1 RETURNING latest_version")
                    .bind(art.id.to_string()),
            )
            .await?;
        let seq = R::new(&row, "artifacts").i("latest_version")?;
        let id = VersionId::new();
        let now = Timestamp::now();
        let blob = v.blob.clone();
        let r = tx
            .exec(
                query(
                    "INSERT INTO artifact_versions (id, artifact_id, project_id, kind, version, tag, description, \
                     uploaded_by, created_at, blob_key, blob_size, blob_sha256, file_name, algorithm_type, \
                     wcek_fingerprint, criteria_json, dataset_url, url_kind, url_expires_at, \
                     data_spec_version_id, attestation_version_id) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
                )
                .bind(id.to_string())
                .bind(art.id.to_string())
                .bind(art.project_id.to_string())
                .bind(art.kind.as_str())
                .bind(seq)
                .bind(v.tag.as_str().to_owned())
                .bind(desc)
                .bind(v.uploaded_by.to_string())
                .bind(now.as_millis())
                .bind(blob.as_ref().map(|b| b.key.clone()))
                .bind(blob.as_ref().map(|b| b.size))
                .bind(blob.as_ref().map(|b| b.sha256.clone()))
                .bind(blob.as_ref().map(|b| b.file_name.clone()))
                .bind(art.algorithm_type.map(|t| t.as_str()))
                .bind(wfp)
                .bind(crit)
                .bind(url)
                .bind(url_expiry.map(|x| x.kind.as_str()))
                .bind(url_expiry.map(|x| x.expires_at.as_millis()))
                .bind(spec.map(|s| s.to_string()))
                .bind(attest.map(|s| s.to_string())),
            )
            .await;
        match r {
            Err(e)
                if is_unique_violation(
                    &e,
                    &[
                        "artifact_versions_tag",
                        "artifact_versions.artifact_id, artifact_versions.tag",
                    ],
                ) =>
            {
                return Err(StoreError::AlreadyExists {
                    what: "version tag",
                    detail: v.tag.to_string(),
                })
            }
            Err(e) if is_fk_violation(&e) => {
                return Err(StoreError::not_found("user", v.uploaded_by))
            }
            r => r?,
        };
        if art.kind == ArtifactKind::Algorithm {
            for s in UploadStep::ALL {
                tx.exec(
                    query("INSERT INTO upload_steps (version_id, step, status, message, at) VALUES ($1, $2, 'pending', NULL, $3)")
                        .bind(id.to_string())
                        .bind(s.as_str())
                        .bind(now.as_millis()),
                )
                .await?;
            }
        }
        index_search(
            &mut tx,
            SearchKind::Version,
            &id.to_string(),
            art.project_id,
            &format!("{} {}", art.name, v.tag),
            &format!("{} {} {}", art.name, v.tag, v.description),
        )
        .await?;
        tx.commit().await?;
        self.get_version(id).await
    }

    async fn get_version(&self, id: VersionId) -> Result<ArtifactVersion> {
        self.versions_where("id = $1", id.to_string())
            .await?
            .pop()
            .ok_or_else(|| StoreError::not_found("artifact version", id))
    }

    async fn list_versions(&self, artifact: ArtifactId) -> Result<Vec<ArtifactVersion>> {
        self.versions_where("artifact_id = $1", artifact.to_string())
            .await
    }

    async fn set_upload_step(&self, version: VersionId, s: UploadStepState) -> Result<()> {
        let mut tx = self.write().await?;
        let (kind, ..) = version_head_in_tx(&mut tx, version).await?;
        if kind != ArtifactKind::Algorithm {
            return Err(StoreError::invalid(
                "upload step",
                "only algorithm versions have upload steps",
            ));
        }
        tx.exec(
            query(
                "INSERT INTO upload_steps (version_id, step, status, message, at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (version_id, step) DO UPDATE SET status = excluded.status, message = excluded.message, at = excluded.at",
            )
            .bind(version.to_string())
            .bind(s.step.as_str())
            .bind(s.status.as_str())
            .bind(s.message.map(|m| m.chars().take(1000).collect::<String>()))
            .bind(s.at.as_millis()),
        )
        .await?;
        tx.commit().await
    }

    async fn set_workload_digest(&self, version: VersionId, digest: &str) -> Result<()> {
        let mut tx = self.write().await?;
        let n = tx
            .exec(
                query("UPDATE artifact_versions SET workload_digest = $1 WHERE id = $2 AND kind = 'algorithm'")
                    .bind(digest.to_owned())
                    .bind(version.to_string()),
            )
            .await?;
        if n == 0 {
            return Err(StoreError::not_found("algorithm version", version));
        }
        tx.commit().await
    }

    async fn accept_criteria(&self, version: VersionId, org: OrgId, user: UserId) -> Result<()> {
        let mut tx = self.write().await?;
        let (kind, project, ..) = version_head_in_tx(&mut tx, version).await?;
        if kind != ArtifactKind::ValidationCriteria {
            return Err(StoreError::invalid(
                "acceptance",
                "only validation criteria are accepted",
            ));
        }
        let p = project_in_tx(&mut tx, project).await?;
        ensure_writable(&p, "accepting criteria")?;
        if role_in_tx(&mut tx, project, org).await? != Some(Role::DataSteward) {
            return Err(StoreError::invalid(
                "acceptance",
                "only a data steward of the project accepts criteria",
            ));
        }
        let r = tx
            .exec(
                query(
                    "INSERT INTO criteria_acceptances (version_id, org_id, user_id, at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (version_id, org_id) DO NOTHING",
                )
                .bind(version.to_string())
                .bind(org.to_string())
                .bind(user.to_string())
                .bind(Timestamp::now().as_millis()),
            )
            .await;
        match r {
            Err(e) if is_fk_violation(&e) => return Err(StoreError::not_found("user", user)),
            r => r?,
        };
        tx.commit().await
    }

    async fn certify_dataset(&self, version: VersionId, user: UserId) -> Result<()> {
        let mut tx = self.write().await?;
        let (kind, project, ..) = version_head_in_tx(&mut tx, version).await?;
        if kind != ArtifactKind::Dataset {
            return Err(StoreError::invalid(
                "certification",
                "only datasets are certified",
            ));
        }
        let p = project_in_tx(&mut tx, project).await?;
        ensure_writable(&p, "certifying datasets")?;
        let r = tx
            .exec(
                query("UPDATE artifact_versions SET certified_by = $1, certified_at = $2 WHERE id = $3 AND certified_by IS NULL")
                    .bind(user.to_string())
                    .bind(Timestamp::now().as_millis())
                    .bind(version.to_string()),
            )
            .await;
        match r {
            Err(e) if is_fk_violation(&e) => return Err(StoreError::not_found("user", user)),
            r => r?,
        };
        tx.commit().await
    }
}
