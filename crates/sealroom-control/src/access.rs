//! Permission checks that need the store: a caller's standing in a project. Every denial is
//! written to the audit log.

use sealroom_types::{AuditOutcome, ErrorCode, Project, ProjectId, Role};

use super::error::{ApiResult, Failure};
use super::extract::Caller;
use super::ControlState;

/// What a caller is in a project.
#[derive(Debug, Clone)]
pub struct ProjectAccess {
    /// The project.
    pub project: Project,
    /// The caller's organization's role, if a member.
    pub role: Option<Role>,
    /// Whether the caller is a platform admin.
    pub admin: bool,
}

impl ProjectAccess {
    /// Whether the caller's organization holds `role`.
    pub fn is(&self, role: Role) -> bool {
        self.role == Some(role)
    }
}

impl ControlState {
    /// Resolves the caller's standing in `project_id`. Anonymous callers get 401, agents 403;
    /// a user who is neither a member nor an admin gets 404, as if the project did not exist.
    pub async fn project_access(
        &self,
        caller: &Caller,
        project_id: ProjectId,
        action: &str,
    ) -> ApiResult<ProjectAccess> {
        let user = match caller.user() {
            Ok(u) => u,
            Err(f) => {
                self.deny(caller, action, Some(project_id), None, &f).await;
                return Err(f);
            }
        };
        let project = match self.store().get_project(project_id).await {
            Ok(p) => p,
            Err(e) => {
                let f = Failure::from(e);
                return Err(f);
            }
        };
        let role = self
            .store()
            .member_role(project_id, user.user.org_id)
            .await?;
        if role.is_none() && !user.user.is_admin {
            let f = Failure::not_found("project", project_id);
            self.deny(caller, action, Some(project_id), None, &f).await;
            return Err(f);
        }
        Ok(ProjectAccess {
            project,
            role,
            admin: user.user.is_admin,
        })
    }

    /// Like [`Self::project_access`], then requires one of `roles` (403 otherwise, audited).
    pub async fn require_role(
        &self,
        caller: &Caller,
        project_id: ProjectId,
        roles: &[Role],
        action: &str,
    ) -> ApiResult<ProjectAccess> {
        let access = self.project_access(caller, project_id, action).await?;
        if access.role.is_some_and(|r| roles.contains(&r)) {
            return Ok(access);
        }
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        let f = Failure::forbidden(format!(
            "only the project's {} may do this",
            names.join(" or ")
        ));
        self.deny(caller, action, Some(project_id), None, &f).await;
        Err(f)
    }

    /// Like [`Self::project_access`], then requires membership (admins who are not members are
    /// refused with 403, audited).
    pub async fn require_member(
        &self,
        caller: &Caller,
        project_id: ProjectId,
        action: &str,
    ) -> ApiResult<ProjectAccess> {
        self.require_role(
            caller,
            project_id,
            &[Role::AlgorithmOwner, Role::DataSteward],
            action,
        )
        .await
    }

    /// Records a permission denial (best effort: a failing audit write is logged, and the
    /// request is refused anyway).
    pub async fn deny(
        &self,
        caller: &Caller,
        action: &str,
        project: Option<ProjectId>,
        object: Option<String>,
        failure: &Failure,
    ) {
        if !matches!(
            failure.code(),
            ErrorCode::Forbidden | ErrorCode::NotFound | ErrorCode::Unauthenticated
        ) {
            return;
        }
        self.audit(
            caller,
            action,
            AuditOutcome::Denied,
            project,
            object,
            serde_json::json!({ "code": failure.code(), "message": failure.error.message }),
        )
        .await;
    }

    /// Appends an audit entry (best effort for denials; see [`Self::audit_required`] for
    /// actions that must not happen unrecorded).
    pub async fn audit(
        &self,
        caller: &Caller,
        action: &str,
        outcome: AuditOutcome,
        project: Option<ProjectId>,
        object: Option<String>,
        detail: serde_json::Value,
    ) {
        if let Err(e) = self
            .audit_required(caller, action, outcome, project, object, detail)
            .await
        {
            tracing::error!(%action, error = %e, "could not write the audit entry");
        }
    }

    /// Appends an audit entry, failing the request if it cannot be written.
    pub async fn audit_required(
        &self,
        caller: &Caller,
        action: &str,
        outcome: AuditOutcome,
        project: Option<ProjectId>,
        object: Option<String>,
        detail: serde_json::Value,
    ) -> ApiResult<()> {
        self.store()
            .append_audit(sealroom_store::NewAuditEntry {
                actor: caller.actor(),
                action: action.to_string(),
                outcome,
                project_id: project,
                object,
                detail,
            })
            .await?;
        Ok(())
    }
}
