//! Projects, members, key pairs and WCEKs.

use async_trait::async_trait;
use aws_lc_rs::digest;
use sealroom_types::*;
use sqlx::query;

use super::rows::{self, PROJECT_COLS, R, WCEK_COLS};
use super::{is_fk_violation, is_unique_violation, page_limit, SqlStore, WriteTx};
use crate::search::normalize_search_text;
use crate::{NewProject, NewWcek, ProjectKeyRecord, ProjectStore, Result, StoreError, Viewer};

pub(crate) fn sha256_hex(b: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, b))
}

/// Writes (or replaces) the search document of an object, in the caller's transaction.
pub(crate) async fn index_search(
    tx: &mut WriteTx<'_>,
    kind: SearchKind,
    object_id: &str,
    project_id: ProjectId,
    title: &str,
    text: &str,
) -> Result<()> {
    // The same statement on both engines: SQLite's triggers keep the FTS5 index in step.
    tx.exec(
        query(
            "INSERT INTO search_docs (object_id, kind, project_id, title, body) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (object_id) DO UPDATE SET title = excluded.title, body = excluded.body",
        )
        .bind(object_id.to_owned())
        .bind(kind.as_str())
        .bind(project_id.to_string())
        .bind(title.to_owned())
        .bind(normalize_search_text(text)),
    )
    .await?;
    Ok(())
}

/// The project row inside a write transaction.
pub(crate) async fn project_in_tx(tx: &mut WriteTx<'_>, id: ProjectId) -> Result<Project> {
    let row = tx
        .opt(
            query(&format!(
                "SELECT {PROJECT_COLS} FROM projects WHERE id = $1"
            ))
            .bind(id.to_string()),
        )
        .await?
        .ok_or_else(|| StoreError::not_found("project", id))?;
    rows::project(&row)
}

/// The organization's role inside a write transaction.
pub(crate) async fn role_in_tx(
    tx: &mut WriteTx<'_>,
    project: ProjectId,
    org: OrgId,
) -> Result<Option<Role>> {
    let row = tx
        .opt(
            query("SELECT role FROM project_members WHERE project_id = $1 AND org_id = $2")
                .bind(project.to_string())
                .bind(org.to_string()),
        )
        .await?;
    row.map(|r| R::new(&r, "project_members").p("role"))
        .transpose()
}

/// Refuses writes to a deactivated project.
pub(crate) fn ensure_writable(p: &Project, action: &'static str) -> Result<()> {
    if p.state.allows_writes() {
        Ok(())
    } else {
        Err(StoreError::ProjectNotActive {
            state: p.state,
            action,
        })
    }
}

/// Bounds and trims a description.
pub(crate) fn description(d: &str) -> Result<String> {
    if d.len() > MAX_DESCRIPTION_LEN {
        return Err(StoreError::invalid(
            "description",
            format!("longer than {MAX_DESCRIPTION_LEN} bytes"),
        ));
    }
    Ok(d.trim().to_owned())
}

#[async_trait]
impl ProjectStore for SqlStore {
    async fn create_project(&self, p: NewProject) -> Result<Project> {
        let description = description(&p.description)?;
        let aos = p
            .members
            .iter()
            .filter(|(_, r)| *r == Role::AlgorithmOwner)
            .count();
        let dss = p
            .members
            .iter()
            .filter(|(_, r)| *r == Role::DataSteward)
            .count();
        if aos != 1 || dss == 0 {
            return Err(StoreError::invalid(
                "members",
                "a project has exactly one algorithm owner and at least one data steward",
            ));
        }
        let mut orgs: Vec<_> = p.members.iter().map(|(o, _)| *o).collect();
        orgs.sort();
        orgs.dedup();
        if orgs.len() != p.members.len() {
            return Err(StoreError::invalid(
                "members",
                "an organization is listed twice",
            ));
        }
        for role in Role::ALL {
            if p.keys.iter().filter(|k| k.role == *role).count() != 1 {
                return Err(StoreError::invalid(
                    "keys",
                    "exactly one key pair per role is required",
                ));
            }
        }
        let now = Timestamp::now();
        let project = Project {
            id: p.id,
            name: p.name.clone(),
            description,
            state: ProjectState::Active,
            technology: p.technology,
            algorithm_logs_to_ao: false,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.write().await?;
        let r = tx
            .exec(
                query(
                    "INSERT INTO projects (id, name, name_key, description, state, technology, \
                     algorithm_logs_to_ao, created_by, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $8)",
                )
                .bind(project.id.to_string())
                .bind(project.name.as_str().to_owned())
                .bind(project.name.as_str().to_lowercase())
                .bind(project.description.clone())
                .bind(project.state.as_str())
                .bind(project.technology.as_str())
                .bind(p.created_by.to_string())
                .bind(now.as_millis()),
            )
            .await;
        match r {
            Err(e) if is_unique_violation(&e, &["projects_name_key", "projects.name_key"]) => {
                return Err(StoreError::AlreadyExists {
                    what: "project",
                    detail: project.name.to_string(),
                })
            }
            Err(e) if is_fk_violation(&e) => {
                return Err(StoreError::not_found("user", p.created_by))
            }
            r => r?,
        };
        for (org, role) in &p.members {
            let r = tx
                .exec(
                    query("INSERT INTO project_members (project_id, org_id, role) VALUES ($1, $2, $3)")
                        .bind(project.id.to_string())
                        .bind(org.to_string())
                        .bind(role.as_str()),
                )
                .await;
            match r {
                Err(e) if is_fk_violation(&e) => {
                    return Err(StoreError::not_found("organization", org))
                }
                r => r?,
            };
        }
        for k in &p.keys {
            tx.exec(
                query(
                    "INSERT INTO project_keys (project_id, role, public_der, fingerprint, file_name, \
                     encrypted_private, provider, key_ref, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(project.id.to_string())
                .bind(k.role.as_str())
                .bind(k.public_der.clone())
                .bind(sha256_hex(&k.public_der))
                .bind(k.file_name.clone())
                .bind(k.encrypted_private.clone())
                .bind(k.provider.clone())
                .bind(k.key_ref.clone())
                .bind(now.as_millis()),
            )
            .await?;
        }
        index_search(
            &mut tx,
            SearchKind::Project,
            &project.id.to_string(),
            project.id,
            project.name.as_str(),
            &format!("{} {}", project.name, project.description),
        )
        .await?;
        tx.commit().await?;
        Ok(project)
    }

    async fn get_project(&self, id: ProjectId) -> Result<Project> {
        let row = self
            .fetch_optional(
                query(&format!(
                    "SELECT {PROJECT_COLS} FROM projects WHERE id = $1"
                ))
                .bind(id.to_string()),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("project", id))?;
        rows::project(&row)
    }

    async fn list_projects(
        &self,
        viewer: Viewer,
        after: Option<ProjectId>,
        limit: u32,
    ) -> Result<Page<Project>> {
        let lim = page_limit(limit);
        let after = after.map(|a| a.to_string()).unwrap_or_default();
        let rows = match viewer {
            Viewer::Admin => {
                self.fetch_all(
                    query(&format!(
                        "SELECT {PROJECT_COLS} FROM projects WHERE id > $1 ORDER BY id LIMIT $2"
                    ))
                    .bind(after)
                    .bind(lim + 1),
                )
                .await?
            }
            Viewer::Org(org) => {
                self.fetch_all(
                    query(&format!(
                        "SELECT {PROJECT_COLS} FROM projects WHERE id > $1 AND id IN \
                         (SELECT project_id FROM project_members WHERE org_id = $2) \
                         ORDER BY id LIMIT $3"
                    ))
                    .bind(after)
                    .bind(org.to_string())
                    .bind(lim + 1),
                )
                .await?
            }
        };
        let mut items = rows.iter().map(rows::project).collect::<Result<Vec<_>>>()?;
        let next_cursor = if items.len() as i64 > lim {
            items.truncate(lim as usize);
            items.last().map(|p| p.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn set_project_state(&self, id: ProjectId, state: ProjectState) -> Result<Project> {
        let mut tx = self.write().await?;
        let n = tx
            .exec(
                query("UPDATE projects SET state = $1, updated_at = $2 WHERE id = $3")
                    .bind(state.as_str())
                    .bind(Timestamp::now().as_millis())
                    .bind(id.to_string()),
            )
            .await?;
        if n == 0 {
            return Err(StoreError::not_found("project", id));
        }
        let p = project_in_tx(&mut tx, id).await?;
        tx.commit().await?;
        Ok(p)
    }

    async fn set_algorithm_logs_to_ao(&self, id: ProjectId, allowed: bool) -> Result<Project> {
        let mut tx = self.write().await?;
        let p = project_in_tx(&mut tx, id).await?;
        ensure_writable(&p, "changing settings")?;
        tx.exec(
            query("UPDATE projects SET algorithm_logs_to_ao = $1, updated_at = $2 WHERE id = $3")
                .bind(i64::from(allowed))
                .bind(Timestamp::now().as_millis())
                .bind(id.to_string()),
        )
        .await?;
        let p = project_in_tx(&mut tx, id).await?;
        tx.commit().await?;
        Ok(p)
    }

    async fn add_member(&self, project: ProjectId, org: OrgId, role: Role) -> Result<()> {
        let mut tx = self.write().await?;
        let p = project_in_tx(&mut tx, project).await?;
        ensure_writable(&p, "adding members")?;
        let r = tx
            .exec(
                query("INSERT INTO project_members (project_id, org_id, role) VALUES ($1, $2, $3)")
                    .bind(project.to_string())
                    .bind(org.to_string())
                    .bind(role.as_str()),
            )
            .await;
        match r {
            Err(e)
                if is_unique_violation(
                    &e,
                    &["project_members_one_ao", "project_members.project_id"],
                ) =>
            {
                return Err(StoreError::invalid(
                    "members",
                    "the project already has an algorithm owner",
                ))
            }
            Err(e)
                if is_unique_violation(
                    &e,
                    &[
                        "project_members_pkey",
                        "project_members.project_id, project_members.org_id",
                    ],
                ) =>
            {
                return Err(StoreError::AlreadyExists {
                    what: "project member",
                    detail: org.to_string(),
                })
            }
            Err(e) if is_fk_violation(&e) => {
                return Err(StoreError::not_found("organization", org))
            }
            r => r?,
        };
        tx.commit().await
    }

    async fn list_members(&self, project: ProjectId) -> Result<Vec<ProjectMember>> {
        self.fetch_all(
            query("SELECT project_id, org_id, role FROM project_members WHERE project_id = $1 ORDER BY role, org_id")
                .bind(project.to_string()),
        )
        .await?
        .iter()
        .map(|row| {
            let r = R::new(row, "project_members");
            Ok(ProjectMember {
                project_id: r.p("project_id")?,
                org_id: r.p("org_id")?,
                role: r.p("role")?,
            })
        })
        .collect()
    }

    async fn member_role(&self, project: ProjectId, org: OrgId) -> Result<Option<Role>> {
        let row = self
            .fetch_optional(
                query("SELECT role FROM project_members WHERE project_id = $1 AND org_id = $2")
                    .bind(project.to_string())
                    .bind(org.to_string()),
            )
            .await?;
        row.map(|r| R::new(&r, "project_members").p("role"))
            .transpose()
    }

    async fn list_members_named(&self, project: ProjectId) -> Result<Vec<(ProjectMember, Name)>> {
        self.fetch_all(
            query(
                "SELECT m.project_id, m.org_id, m.role, o.name FROM project_members m \
                 JOIN organizations o ON o.id = m.org_id \
                 WHERE m.project_id = $1 ORDER BY m.role, m.org_id",
            )
            .bind(project.to_string()),
        )
        .await?
        .iter()
        .map(|row| {
            let r = R::new(row, "project_members");
            Ok((
                ProjectMember {
                    project_id: r.p("project_id")?,
                    org_id: r.p("org_id")?,
                    role: r.p("role")?,
                },
                r.name("name")?,
            ))
        })
        .collect()
    }

    async fn list_org_projects(
        &self,
        org: OrgId,
        after: Option<ProjectId>,
        limit: u32,
    ) -> Result<Page<(Project, Role)>> {
        let lim = page_limit(limit);
        let rows = self
            .fetch_all(
                query(&format!(
                    "SELECT {PROJECT_COLS}, role FROM projects \
                     JOIN project_members ON project_members.project_id = projects.id \
                     WHERE project_members.org_id = $1 AND projects.id > $2 \
                     ORDER BY projects.id LIMIT $3"
                ))
                .bind(org.to_string())
                .bind(after.map(|a| a.to_string()).unwrap_or_default())
                .bind(lim + 1),
            )
            .await?;
        let mut items = rows
            .iter()
            .map(|row| {
                let role = R::new(row, "project_members").p("role")?;
                Ok((rows::project(row)?, role))
            })
            .collect::<Result<Vec<_>>>()?;
        let next_cursor = if items.len() as i64 > lim {
            items.truncate(lim as usize);
            items.last().map(|(p, _)| p.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn org_roles_between(
        &self,
        org: OrgId,
        after: Option<ProjectId>,
        through: ProjectId,
    ) -> Result<Vec<(ProjectId, Role)>> {
        self.fetch_all(
            query(
                "SELECT project_id, role FROM project_members \
                 WHERE org_id = $1 AND project_id > $2 AND project_id <= $3",
            )
            .bind(org.to_string())
            .bind(after.map(|a| a.to_string()).unwrap_or_default())
            .bind(through.to_string()),
        )
        .await?
        .iter()
        .map(|row| {
            let r = R::new(row, "project_members");
            Ok((r.p("project_id")?, r.p("role")?))
        })
        .collect()
    }

    async fn project_key(&self, project: ProjectId, role: Role) -> Result<ProjectKeyRecord> {
        let row = self
            .fetch_optional(
                query(
                    "SELECT project_id, role, public_der, fingerprint, file_name, encrypted_private, \
                     provider, key_ref, created_at FROM project_keys WHERE project_id = $1 AND role = $2",
                )
                .bind(project.to_string())
                .bind(role.as_str()),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("project key", format!("{project}/{role}")))?;
        let r = R::new(&row, "project_keys");
        Ok(ProjectKeyRecord {
            info: key_info(&r)?,
            public_der: r.bytes("public_der")?,
            encrypted_private: r.bytes("encrypted_private")?,
            key_ref: r.s("key_ref")?,
        })
    }

    async fn project_keys(&self, project: ProjectId) -> Result<Vec<ProjectKeyInfo>> {
        self.fetch_all(
            query(
                "SELECT project_id, role, fingerprint, file_name, provider, created_at \
                 FROM project_keys WHERE project_id = $1 ORDER BY role",
            )
            .bind(project.to_string()),
        )
        .await?
        .iter()
        .map(|row| key_info(&R::new(row, "project_keys")))
        .collect()
    }

    async fn add_wcek(&self, w: NewWcek) -> Result<WcekVersion> {
        if w.wcek.is_empty() || w.wcek.len() > 4096 {
            return Err(StoreError::invalid("WCEK", "expected 1 to 4096 bytes"));
        }
        let mut tx = self.write().await?;
        let p = project_in_tx(&mut tx, w.project_id).await?;
        ensure_writable(&p, "uploading a WCEK")?;
        let row = tx
            .one(
                query("SELECT COALESCE(MAX(version), 0) AS v FROM wceks WHERE project_id = $1 AND role = $2")
                    .bind(w.project_id.to_string())
                    .bind(w.role.as_str()),
            )
            .await?;
        let version = R::new(&row, "wceks").i("v")? + 1;
        // Only the latest WCEK's bytes are kept.
        tx.exec(
            query("UPDATE wceks SET wcek = NULL WHERE project_id = $1 AND role = $2")
                .bind(w.project_id.to_string())
                .bind(w.role.as_str()),
        )
        .await?;
        let rec = WcekVersion {
            id: WcekId::new(),
            project_id: w.project_id,
            role: w.role,
            version,
            fingerprint: sha256_hex(&w.wcek),
            cek_key_id: w.cek_key_id.clone(),
            uploaded_by: w.uploaded_by,
            created_at: Timestamp::now(),
            is_latest: true,
        };
        let r = tx
            .exec(
                query(
                    "INSERT INTO wceks (id, project_id, role, version, fingerprint, cek_key_id, wcek, uploaded_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(rec.id.to_string())
                .bind(rec.project_id.to_string())
                .bind(rec.role.as_str())
                .bind(version)
                .bind(rec.fingerprint.clone())
                .bind(rec.cek_key_id.clone())
                .bind(w.wcek.clone())
                .bind(rec.uploaded_by.to_string())
                .bind(rec.created_at.as_millis()),
            )
            .await;
        match r {
            Err(e)
                if is_unique_violation(
                    &e,
                    &[
                        "wceks_version",
                        "wceks.project_id, wceks.role, wceks.version",
                    ],
                ) =>
            {
                return Err(StoreError::AlreadyExists {
                    what: "WCEK version",
                    detail: version.to_string(),
                })
            }
            Err(e) if is_fk_violation(&e) => {
                return Err(StoreError::not_found("user", w.uploaded_by))
            }
            r => r?,
        };
        tx.commit().await?;
        Ok(rec)
    }

    async fn latest_wcek(
        &self,
        project: ProjectId,
        role: Role,
    ) -> Result<Option<(WcekVersion, Vec<u8>)>> {
        let row = self
            .fetch_optional(
                query(&format!(
                    "SELECT {WCEK_COLS}, wcek FROM wceks WHERE project_id = $1 AND role = $2 \
                     ORDER BY version DESC LIMIT 1"
                ))
                .bind(project.to_string())
                .bind(role.as_str()),
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut v = rows::wcek(&row)?;
        v.is_latest = true;
        let bytes = R::new(&row, "wceks")
            .obytes("wcek")?
            .ok_or_else(|| StoreError::Corrupt {
                table: "wceks",
                column: "wcek".into(),
                detail: "the latest WCEK has no bytes".into(),
            })?;
        Ok(Some((v, bytes)))
    }

    async fn list_wceks(&self, project: ProjectId, role: Role) -> Result<Vec<WcekVersion>> {
        let mut v = self
            .fetch_all(
                query(&format!(
                    "SELECT {WCEK_COLS} FROM wceks WHERE project_id = $1 AND role = $2 ORDER BY version"
                ))
                .bind(project.to_string())
                .bind(role.as_str()),
            )
            .await?
            .iter()
            .map(rows::wcek)
            .collect::<Result<Vec<_>>>()?;
        if let Some(last) = v.last_mut() {
            last.is_latest = true;
        }
        Ok(v)
    }
}

fn key_info(r: &R<'_>) -> Result<ProjectKeyInfo> {
    Ok(ProjectKeyInfo {
        project_id: r.p("project_id")?,
        role: r.p("role")?,
        file_name: r.s("file_name")?,
        fingerprint: r.s("fingerprint")?,
        provider: r.s("provider")?,
        created_at: r.ts("created_at")?,
    })
}
