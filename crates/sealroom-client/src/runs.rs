//! Run configurations, run requests, runs, logs and outputs (`docs/api/runs.md`).

use std::collections::BTreeMap;
use std::io::Write;

use sealroom_types::{
    LogStream, OutputKind, ProjectId, Role, Run, RunConfig, RunConfigId, RunId, RunLogLine,
    RunStateChange, Timestamp, VersionId,
};
use serde::{Deserialize, Serialize};

use crate::{encode, Call, Client, Download, ProgressFn, Result};

/// A new run configuration (AO).
#[derive(Debug, Clone, Serialize)]
pub struct NewRunConfig<'a> {
    /// Name shown to people.
    pub name: &'a str,
    /// Free text.
    pub description: &'a str,
    /// The algorithm version.
    pub algorithm_version_id: VersionId,
    /// The dataset version.
    pub dataset_version_id: VersionId,
    /// For validation runs: the accepted criteria version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub criteria_version_id: Option<VersionId>,
}

/// A run request (AO): runtime parameters and the compute size.
#[derive(Debug, Clone, Serialize)]
pub struct NewRun {
    /// Runtime parameters (environment variables in the enclave), by name.
    pub params: BTreeMap<String, String>,
    /// vCPUs (one of the technology's choices).
    pub vcpus: u32,
    /// RAM in GiB.
    pub ram_gib: u32,
}

/// A run and its stage history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunDetail {
    /// The run.
    pub run: Run,
    /// Its state changes, oldest first.
    #[serde(default)]
    pub history: Vec<RunStateChange>,
}

/// One output of a run, as listed (the DS sees size, hash and verdict; the content goes to its
/// owner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputInfo {
    /// Its ID in `/outputs/{output_id}/content`.
    pub id: String,
    /// What it is.
    pub kind: OutputKind,
    /// Name given by the algorithm.
    pub name: String,
    /// Size in bytes.
    pub size: i64,
    /// Hex SHA-256 of the content.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Whether it passed the accepted criteria.
    #[serde(default)]
    pub passed_criteria: Option<bool>,
    /// When it arrived.
    pub created_at: Timestamp,
    /// Which party may read its content.
    #[serde(default)]
    pub owner: Option<Role>,
    /// Whether the caller may read its content.
    #[serde(default)]
    pub content_visible: Option<bool>,
}

/// A page of log lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPage {
    /// The lines, oldest first.
    pub lines: Vec<RunLogLine>,
    /// Pass as `after` for the next page.
    #[serde(default)]
    pub next_after: Option<i64>,
    /// The logs this page was read from.
    #[serde(default)]
    pub streams: Vec<LogStream>,
}

impl LogPage {
    /// The `after` to ask for the lines that follow.
    pub fn last_seq(&self) -> Option<i64> {
        self.next_after.or_else(|| self.lines.last().map(|l| l.seq))
    }
}

impl Client {
    /// `POST /api/v1/projects/{project_id}/run-configs` (AO).
    pub fn create_run_config(
        &self,
        project_id: ProjectId,
        config: &NewRunConfig<'_>,
    ) -> Result<RunConfig> {
        self.json(Call::post(format!("/api/v1/projects/{project_id}/run-configs")).json(config)?)
    }

    /// `GET /api/v1/projects/{project_id}/run-configs`.
    pub fn list_run_configs(&self, project_id: ProjectId) -> Result<Vec<RunConfig>> {
        self.list(Call::get(format!(
            "/api/v1/projects/{project_id}/run-configs"
        )))
    }

    /// `GET /api/v1/run-configs/{run_config_id}`.
    pub fn run_config(&self, run_config_id: RunConfigId) -> Result<RunConfig> {
        self.json(Call::get(format!("/api/v1/run-configs/{run_config_id}")))
    }

    /// `POST /api/v1/run-configs/{run_config_id}/runs` (AO): a run request.
    pub fn request_run(&self, run_config_id: RunConfigId, run: &NewRun) -> Result<Run> {
        self.json(Call::post(format!("/api/v1/run-configs/{run_config_id}/runs")).json(run)?)
    }

    /// `GET /api/v1/projects/{project_id}/runs?run_config_id=`.
    pub fn list_runs(
        &self,
        project_id: ProjectId,
        run_config_id: Option<RunConfigId>,
    ) -> Result<Vec<Run>> {
        self.list(
            Call::get(format!("/api/v1/projects/{project_id}/runs"))
                .query_opt("run_config_id", run_config_id),
        )
    }

    /// `GET /api/v1/runs/{run_id}`: the run and its history.
    pub fn run(&self, run_id: RunId) -> Result<RunDetail> {
        self.json(Call::get(format!("/api/v1/runs/{run_id}")))
    }

    /// `POST /api/v1/runs/{run_id}/initiate` (DS).
    pub fn initiate_run(&self, run_id: RunId) -> Result<serde_json::Value> {
        self.value(Call::post(format!("/api/v1/runs/{run_id}/initiate")))
    }

    /// `POST /api/v1/runs/{run_id}/reject` (DS), with the reason the AO is told.
    pub fn reject_run(&self, run_id: RunId, reason: &str) -> Result<serde_json::Value> {
        #[derive(Serialize)]
        struct Body<'a> {
            reason: &'a str,
        }
        self.value(Call::post(format!("/api/v1/runs/{run_id}/reject")).json(&Body { reason })?)
    }

    /// `POST /api/v1/runs/{run_id}/cancel` (DS).
    pub fn cancel_run(&self, run_id: RunId, reason: Option<&str>) -> Result<serde_json::Value> {
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            reason: Option<&'a str>,
        }
        self.value(Call::post(format!("/api/v1/runs/{run_id}/cancel")).json(&Body { reason })?)
    }

    /// `GET /api/v1/runs/{run_id}/logs?stream=&after=&limit=`.
    pub fn run_logs(
        &self,
        run_id: RunId,
        stream: Option<LogStream>,
        after: Option<i64>,
        limit: Option<u32>,
    ) -> Result<LogPage> {
        self.json(
            Call::get(format!("/api/v1/runs/{run_id}/logs"))
                .query_opt("stream", stream)
                .query_opt("after", after)
                .query_opt("limit", limit),
        )
    }

    /// `GET /api/v1/runs/{run_id}/outputs`.
    pub fn run_outputs(&self, run_id: RunId) -> Result<Vec<OutputInfo>> {
        self.list(Call::get(format!("/api/v1/runs/{run_id}/outputs")))
    }

    /// `GET /api/v1/runs/{run_id}/outputs/{output_id}/content`, streamed into `out`.
    pub fn download_output(
        &self,
        run_id: RunId,
        output_id: &str,
        out: &mut dyn Write,
        progress: ProgressFn<'_>,
    ) -> Result<Download> {
        self.download(
            Call::get(format!(
                "/api/v1/runs/{run_id}/outputs/{}/content",
                encode(output_id)
            )),
            out,
            progress,
        )
    }

    /// `GET /api/v1/runs/{run_id}/report` (AO): the validated final report, verbatim.
    pub fn run_report(&self, run_id: RunId) -> Result<serde_json::Value> {
        self.value(Call::get(format!("/api/v1/runs/{run_id}/report")))
    }
}
