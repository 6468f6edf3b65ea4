//! Reading typed values out of rows. A value that does not parse is a `Corrupt` error naming
//! the table and column: the database was changed outside Sealroom.

use std::str::FromStr;

use sealroom_types::*;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Result, StoreError};

/// A row of a known table.
pub(crate) struct R<'a> {
    pub row: &'a AnyRow,
    pub table: &'static str,
}

impl<'a> R<'a> {
    pub fn new(row: &'a AnyRow, table: &'static str) -> Self {
        R { row, table }
    }

    fn corrupt(&self, col: &str, detail: impl ToString) -> StoreError {
        StoreError::Corrupt {
            table: self.table,
            column: col.to_owned(),
            detail: detail.to_string(),
        }
    }

    pub fn s(&self, col: &str) -> Result<String> {
        self.row
            .try_get::<String, _>(col)
            .map_err(|e| self.corrupt(col, e))
    }

    pub fn os(&self, col: &str) -> Result<Option<String>> {
        self.row
            .try_get::<Option<String>, _>(col)
            .map_err(|e| self.corrupt(col, e))
    }

    pub fn i(&self, col: &str) -> Result<i64> {
        self.row
            .try_get::<i64, _>(col)
            .map_err(|e| self.corrupt(col, e))
    }

    pub fn oi(&self, col: &str) -> Result<Option<i64>> {
        self.row
            .try_get::<Option<i64>, _>(col)
            .map_err(|e| self.corrupt(col, e))
    }

    pub fn flag(&self, col: &str) -> Result<bool> {
        Ok(self.i(col)? != 0)
    }

    pub fn oflag(&self, col: &str) -> Result<Option<bool>> {
        Ok(self.oi(col)?.map(|v| v != 0))
    }

    pub fn bytes(&self, col: &str) -> Result<Vec<u8>> {
        self.row
            .try_get::<Vec<u8>, _>(col)
            .map_err(|e| self.corrupt(col, e))
    }

    pub fn obytes(&self, col: &str) -> Result<Option<Vec<u8>>> {
        self.row
            .try_get::<Option<Vec<u8>>, _>(col)
            .map_err(|e| self.corrupt(col, e))
    }

    pub fn ts(&self, col: &str) -> Result<Timestamp> {
        Ok(Timestamp::from_millis(self.i(col)?))
    }

    pub fn ots(&self, col: &str) -> Result<Option<Timestamp>> {
        Ok(self.oi(col)?.map(Timestamp::from_millis))
    }

    pub fn p<T: FromStr>(&self, col: &str) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        let s = self.s(col)?;
        s.parse().map_err(|e: T::Err| self.corrupt(col, e))
    }

    pub fn op<T: FromStr>(&self, col: &str) -> Result<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        match self.os(col)? {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|e: T::Err| self.corrupt(col, e)),
        }
    }

    pub fn name(&self, col: &str) -> Result<Name> {
        let s = self.s(col)?;
        Name::parse(&s).map_err(|e| self.corrupt(col, e))
    }

    pub fn u32(&self, col: &str) -> Result<u32> {
        let v = self.i(col)?;
        u32::try_from(v).map_err(|e| self.corrupt(col, e))
    }
}

pub(crate) const ORG_COLS: &str = "id, name, created_at";

pub(crate) fn org(row: &AnyRow) -> Result<Organization> {
    let r = R::new(row, "organizations");
    Ok(Organization {
        id: r.p("id")?,
        name: r.name("name")?,
        created_at: r.ts("created_at")?,
    })
}

pub(crate) const USER_COLS: &str =
    "id, org_id, username, display_name, is_admin, disabled, created_at, password_hash";

pub(crate) fn user(row: &AnyRow) -> Result<User> {
    let r = R::new(row, "users");
    Ok(User {
        id: r.p("id")?,
        org_id: r.p("org_id")?,
        username: r.s("username")?,
        display_name: r.s("display_name")?,
        is_admin: r.flag("is_admin")?,
        disabled: r.flag("disabled")?,
        created_at: r.ts("created_at")?,
    })
}

pub(crate) const PROJECT_COLS: &str =
    "id, name, description, state, technology, algorithm_logs_to_ao, created_at, updated_at";

pub(crate) fn project(row: &AnyRow) -> Result<Project> {
    let r = R::new(row, "projects");
    Ok(Project {
        id: r.p("id")?,
        name: r.name("name")?,
        description: r.s("description")?,
        state: r.p("state")?,
        technology: r.p("technology")?,
        algorithm_logs_to_ao: r.flag("algorithm_logs_to_ao")?,
        created_at: r.ts("created_at")?,
        updated_at: r.ts("updated_at")?,
    })
}

pub(crate) const ARTIFACT_COLS: &str = "id, project_id, kind, owner_org_id, name, description, \
     algorithm_type, created_by, created_at, latest_version";

pub(crate) fn artifact(row: &AnyRow) -> Result<Artifact> {
    let r = R::new(row, "artifacts");
    Ok(Artifact {
        id: r.p("id")?,
        project_id: r.p("project_id")?,
        kind: r.p("kind")?,
        owner_org_id: r.p("owner_org_id")?,
        name: r.name("name")?,
        description: r.s("description")?,
        algorithm_type: r.op("algorithm_type")?,
        created_by: r.p("created_by")?,
        created_at: r.ts("created_at")?,
        latest_version: r.i("latest_version")?,
    })
}

pub(crate) const WCEK_COLS: &str = "id, project_id, role, version, fingerprint, cek_key_id, \
     uploaded_by, created_at";

pub(crate) fn wcek(row: &AnyRow) -> Result<WcekVersion> {
    let r = R::new(row, "wceks");
    Ok(WcekVersion {
        id: r.p("id")?,
        project_id: r.p("project_id")?,
        role: r.p("role")?,
        version: r.i("version")?,
        fingerprint: r.s("fingerprint")?,
        cek_key_id: r.os("cek_key_id")?,
        uploaded_by: r.p("uploaded_by")?,
        created_at: r.ts("created_at")?,
        is_latest: false,
    })
}

pub(crate) const RUN_CONFIG_COLS: &str =
    "id, project_id, name, description, algorithm_version_id, \
     dataset_version_id, criteria_version_id, created_by, created_at";

pub(crate) fn run_config(row: &AnyRow) -> Result<RunConfig> {
    let r = R::new(row, "run_configs");
    Ok(RunConfig {
        id: r.p("id")?,
        project_id: r.p("project_id")?,
        name: r.name("name")?,
        description: r.s("description")?,
        algorithm_version_id: r.p("algorithm_version_id")?,
        dataset_version_id: r.p("dataset_version_id")?,
        criteria_version_id: r.op("criteria_version_id")?,
        created_by: r.p("created_by")?,
        created_at: r.ts("created_at")?,
    })
}

pub(crate) const RUN_COLS: &str = "id, project_id, run_config_id, state, params, vcpus, ram_gib, \
     requested_by, requested_at, initiated_by, reason, site_id, updated_at, dataset_org_id";

pub(crate) fn run(row: &AnyRow) -> Result<Run> {
    let r = R::new(row, "runs");
    let params_json = r.s("params")?;
    let params: RuntimeParams =
        serde_json::from_str(&params_json).map_err(|e| StoreError::Corrupt {
            table: "runs",
            column: "params".into(),
            detail: e.to_string(),
        })?;
    Ok(Run {
        id: r.p("id")?,
        project_id: r.p("project_id")?,
        run_config_id: r.p("run_config_id")?,
        state: r.p("state")?,
        params,
        compute: ComputeSize {
            vcpus: r.u32("vcpus")?,
            ram_gib: r.u32("ram_gib")?,
        },
        requested_by: r.p("requested_by")?,
        requested_at: r.ts("requested_at")?,
        initiated_by: r.op("initiated_by")?,
        reason: r.os("reason")?,
        site_id: r.op("site_id")?,
        updated_at: r.ts("updated_at")?,
    })
}

pub(crate) fn blob_ref(r: &R<'_>) -> Result<Option<BlobRef>> {
    let Some(key) = r.os("blob_key")? else {
        return Ok(None);
    };
    Ok(Some(BlobRef {
        key,
        size: r.oi("blob_size")?.unwrap_or(0),
        sha256: r.os("blob_sha256")?.unwrap_or_default(),
        file_name: r.os("file_name")?.unwrap_or_default(),
    }))
}
