//! Projects, members, settings and keys (`docs/api/projects.md`).

use std::io::Write;

use sealroom_types::{
    OrgId, Page, Project, ProjectId, ProjectKeyInfo, ProjectState, Role, Technology, WcekVersion,
};
use serde::{Deserialize, Serialize};

use crate::{Call, Client, Download, ProgressFn, Result, Upload};

/// A member organization in a new project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberSpec {
    /// The organization.
    pub org_id: OrgId,
    /// Its role.
    pub role: Role,
}

/// A new project (admin).
#[derive(Debug, Clone, Serialize)]
pub struct NewProject<'a> {
    /// Unique name.
    pub name: &'a str,
    /// Free text.
    pub description: &'a str,
    /// The confidential-compute technology, fixed for the project's life.
    pub technology: Technology,
    /// One AO and one or more DS organizations.
    pub members: Vec<MemberSpec>,
}

/// A project in the caller's list, with the caller's role in it (none for an admin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectListItem {
    /// The project.
    #[serde(flatten)]
    pub project: Project,
    /// The caller organization's role.
    #[serde(default)]
    pub my_role: Option<Role>,
}

/// A member organization as the project page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// The organization.
    pub org_id: OrgId,
    /// Its name.
    #[serde(default)]
    pub org_name: String,
    /// Its role.
    pub role: Role,
}

/// The latest WCEK of each role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatestWceks {
    /// The AO's.
    #[serde(default)]
    pub algorithm_owner: Option<WcekVersion>,
    /// The DS's.
    #[serde(default)]
    pub data_steward: Option<WcekVersion>,
}

/// `GET /api/v1/projects/{id}`: the project page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectPage {
    /// The project.
    pub project: Project,
    /// Its member organizations.
    #[serde(default)]
    pub members: Vec<MemberInfo>,
    /// The public halves of its key pairs.
    #[serde(default)]
    pub keys: Vec<ProjectKeyInfo>,
    /// The latest WCEK per role.
    #[serde(default)]
    pub latest_wceks: LatestWceks,
    /// The caller organization's role (none for an admin).
    #[serde(default)]
    pub my_role: Option<Role>,
}

/// The path form of a role (`ao` / `ds`).
fn role_path(role: Role) -> &'static str {
    role.short()
}

impl Client {
    /// `POST /api/v1/projects` (admin): creates a project and its key pairs.
    pub fn create_project(&self, project: &NewProject<'_>) -> Result<ProjectPage> {
        self.json(Call::post("/api/v1/projects").json(project)?)
    }

    /// `GET /api/v1/projects?cursor=&limit=`: the projects the caller may see, a page at a time.
    pub fn list_projects(
        &self,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<ProjectListItem>> {
        self.page(
            Call::get("/api/v1/projects")
                .query_opt("cursor", cursor)
                .query_opt("limit", limit),
        )
    }

    /// Every project the caller may see (follows the cursors).
    pub fn list_all_projects(&self) -> Result<Vec<ProjectListItem>> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self.list_projects(cursor.as_deref(), Some(200))?;
            all.extend(page.items);
            match page.next_cursor {
                // A server that repeats a cursor would loop forever: stop instead.
                Some(next) if Some(&next) != cursor.as_ref() => cursor = Some(next),
                _ => return Ok(all),
            }
        }
    }

    /// `GET /api/v1/projects/{project_id}`.
    pub fn project(&self, project_id: ProjectId) -> Result<ProjectPage> {
        self.json(Call::get(format!("/api/v1/projects/{project_id}")))
    }

    /// `PUT /api/v1/projects/{project_id}/state` (admin). Returns the server's answer
    /// (`null` when it sends none).
    pub fn set_project_state(
        &self,
        project_id: ProjectId,
        state: ProjectState,
    ) -> Result<serde_json::Value> {
        #[derive(Serialize)]
        struct Body {
            state: ProjectState,
        }
        self.value(Call::put(format!("/api/v1/projects/{project_id}/state")).json(&Body { state })?)
    }

    /// `POST /api/v1/projects/{project_id}/members` (admin).
    pub fn add_project_member(
        &self,
        project_id: ProjectId,
        org_id: OrgId,
        role: Role,
    ) -> Result<serde_json::Value> {
        self.value(
            Call::post(format!("/api/v1/projects/{project_id}/members"))
                .json(&MemberSpec { org_id, role })?,
        )
    }

    /// `PUT /api/v1/projects/{project_id}/settings` (DS).
    pub fn set_project_settings(
        &self,
        project_id: ProjectId,
        algorithm_logs_to_ao: bool,
    ) -> Result<serde_json::Value> {
        #[derive(Serialize)]
        struct Body {
            algorithm_logs_to_ao: bool,
        }
        self.value(
            Call::put(format!("/api/v1/projects/{project_id}/settings")).json(&Body {
                algorithm_logs_to_ao,
            })?,
        )
    }

    /// `GET /api/v1/projects/{project_id}/keys/{role}/kek` (members of that role): the KEK,
    /// SPKI DER, streamed into `out`; the suggested file name is in the result.
    pub fn download_kek(
        &self,
        project_id: ProjectId,
        role: Role,
        out: &mut dyn Write,
    ) -> Result<Download> {
        let noop: ProgressFn<'_> = &|_| {};
        self.download(
            Call::get(format!(
                "/api/v1/projects/{project_id}/keys/{}/kek",
                role_path(role)
            )),
            out,
            noop,
        )
    }

    /// `POST /api/v1/projects/{project_id}/keys/{role}/wcek` (members of that role): uploads a
    /// WCEK (at most 1024 bytes); 422 `wcek_does_not_unwrap` when it is not wrapped to the KEK.
    pub fn upload_wcek(
        &self,
        project_id: ProjectId,
        role: Role,
        wcek: &[u8],
    ) -> Result<WcekVersion> {
        let mut reader = wcek;
        let len = wcek.len() as u64;
        self.json(
            Call::post(format!(
                "/api/v1/projects/{project_id}/keys/{}/wcek",
                role_path(role)
            ))
            .stream(
                Upload::new(&mut reader, Some(len)),
                "application/octet-stream",
            ),
        )
    }

    /// `GET /api/v1/projects/{project_id}/keys/{role}/wceks` (members): every WCEK version.
    pub fn list_wceks(&self, project_id: ProjectId, role: Role) -> Result<Vec<WcekVersion>> {
        self.list(Call::get(format!(
            "/api/v1/projects/{project_id}/keys/{}/wceks",
            role_path(role)
        )))
    }
}
