//! The agent API and the key broker (site tokens), and the project attestation policy
//! (`docs/api/runs.md`, `docs/api/broker.md`). The run bundle and the evidence are passed as
//! JSON values: their schemas belong to the agent and the verifiers.

use std::io::Write;

use sealroom_types::{LogStream, OutputKind, ProjectId, RunId, RunState, Timestamp};
use serde::{Deserialize, Serialize};

use crate::{Call, Client, Download, ProgressFn, Result, Upload};

/// One log line sent by an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentLogLine {
    /// Which log.
    pub stream: LogStream,
    /// When the agent saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
    /// The line.
    pub line: String,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The run's state on the server.
    pub state: RunState,
    /// Whether the DS cancelled the run (the agent stops it).
    pub cancel: bool,
}

/// A key-release nonce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nonce {
    /// Base64.
    pub nonce: String,
    /// When it stops being accepted.
    pub expires_at: Timestamp,
}

/// A key-release request.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseRequest<'a> {
    /// The run.
    pub run_id: RunId,
    /// The nonce from [`Client::broker_nonce`] (base64).
    pub nonce: &'a str,
    /// The TEE evidence.
    pub evidence: serde_json::Value,
    /// The enclave's ephemeral X25519 public key (base64).
    pub enclave_public_key: &'a str,
    /// The digest of the workload.
    pub workload_digest: &'a str,
}

/// One released CEK, sealed to the enclave's key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// Whose CEK.
    pub role: sealroom_types::Role,
    /// The CEK's key id.
    pub cek_key_id: String,
    /// The WCEK version it was unwrapped from.
    pub wcek_fingerprint: String,
    /// HPKE-sealed CEK (base64).
    pub sealed_cek: String,
}

impl std::fmt::Debug for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Release")
            .field("role", &self.role)
            .field("cek_key_id", &self.cek_key_id)
            .field("wcek_fingerprint", &self.wcek_fingerprint)
            .finish_non_exhaustive()
    }
}

/// The broker's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Releases {
    /// One per role whose CEK the run needs.
    pub releases: Vec<Release>,
}

impl Client {
    /// `POST /api/v1/agent/claim?wait=` (site): the bundle of an initiated run, or `None` when
    /// none arrived within `wait_secs` (at most 30).
    pub fn agent_claim(&self, wait_secs: u32) -> Result<Option<serde_json::Value>> {
        let v = self.value(Call::post("/api/v1/agent/claim").query("wait", wait_secs.min(30)))?;
        Ok((!v.is_null()).then_some(v))
    }

    /// `GET /api/v1/agent/runs/{run_id}` (site): the bundle of a run this site claimed.
    pub fn agent_run(&self, run_id: RunId) -> Result<serde_json::Value> {
        self.value(Call::get(format!("/api/v1/agent/runs/{run_id}")))
    }

    /// `GET /api/v1/agent/runs/{run_id}/package` (site): the algorithm package tar.
    pub fn agent_package(
        &self,
        run_id: RunId,
        out: &mut dyn Write,
        progress: ProgressFn<'_>,
    ) -> Result<Download> {
        self.download(
            Call::get(format!("/api/v1/agent/runs/{run_id}/package")),
            out,
            progress,
        )
    }

    /// `POST /api/v1/agent/runs/{run_id}/state` (site).
    pub fn agent_set_state(
        &self,
        run_id: RunId,
        state: RunState,
        message: Option<&str>,
    ) -> Result<serde_json::Value> {
        #[derive(Serialize)]
        struct Body<'a> {
            state: RunState,
            #[serde(skip_serializing_if = "Option::is_none")]
            message: Option<&'a str>,
        }
        self.value(
            Call::post(format!("/api/v1/agent/runs/{run_id}/state"))
                .json(&Body { state, message })?,
        )
    }

    /// `POST /api/v1/agent/runs/{run_id}/heartbeat` (site).
    pub fn agent_heartbeat(&self, run_id: RunId) -> Result<Heartbeat> {
        self.json(Call::post(format!("/api/v1/agent/runs/{run_id}/heartbeat")))
    }

    /// `POST /api/v1/agent/runs/{run_id}/logs` (site).
    pub fn agent_logs(&self, run_id: RunId, lines: &[AgentLogLine]) -> Result<()> {
        #[derive(Serialize)]
        struct Body<'a> {
            lines: &'a [AgentLogLine],
        }
        self.empty(Call::post(format!("/api/v1/agent/runs/{run_id}/logs")).json(&Body { lines })?)
    }

    /// `PUT /api/v1/agent/runs/{run_id}/outputs/{kind}?name=&passed_criteria=` (site).
    pub fn agent_put_output(
        &self,
        run_id: RunId,
        kind: OutputKind,
        name: &str,
        passed_criteria: Option<bool>,
        upload: Upload<'_>,
    ) -> Result<serde_json::Value> {
        self.value(
            Call::put(format!("/api/v1/agent/runs/{run_id}/outputs/{kind}"))
                .query("name", name)
                .query_opt("passed_criteria", passed_criteria)
                .stream(upload, "application/octet-stream"),
        )
    }

    /// `PUT /api/v1/agent/attestation-key` (site): the simulated attester's Ed25519 key.
    pub fn agent_set_attestation_key(&self, public_key_b64: &str) -> Result<serde_json::Value> {
        #[derive(Serialize)]
        struct Body<'a> {
            public_key: &'a str,
        }
        self.value(Call::put("/api/v1/agent/attestation-key").json(&Body {
            public_key: public_key_b64,
        })?)
    }

    /// `GET /api/v1/projects/{project_id}/attestation-policy`.
    pub fn attestation_policy(&self, project_id: ProjectId) -> Result<serde_json::Value> {
        self.value(Call::get(format!(
            "/api/v1/projects/{project_id}/attestation-policy"
        )))
    }

    /// `PUT /api/v1/projects/{project_id}/attestation-policy`.
    pub fn set_attestation_policy(
        &self,
        project_id: ProjectId,
        policy: &serde_json::Value,
    ) -> Result<serde_json::Value> {
        self.value(
            Call::put(format!("/api/v1/projects/{project_id}/attestation-policy")).json(policy)?,
        )
    }

    /// `POST /api/v1/broker/nonce` (site).
    pub fn broker_nonce(&self, run_id: RunId) -> Result<Nonce> {
        #[derive(Serialize)]
        struct Body {
            run_id: RunId,
        }
        self.json(Call::post("/api/v1/broker/nonce").json(&Body { run_id })?)
    }

    /// `POST /api/v1/broker/release` (site).
    pub fn broker_release(&self, request: &ReleaseRequest<'_>) -> Result<Releases> {
        self.json(Call::post("/api/v1/broker/release").json(request)?)
    }
}
