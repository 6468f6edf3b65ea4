//! The Enclave API: what an algorithm inside the sandbox talks to, on EscrowAI's paths so its
//! users' algorithms run unchanged (DESIGN.md §4).
//!
//! | method path | does |
//! |---|---|
//! | `GET /api/v1/data/files` | `{"files":[{"id","name","size","uploadDate"}],"totalFiles"}` |
//! | `GET /api/v1/data/file?filepath=NAME` | the decrypted bytes, streamed; `Range` supported; 404 if unknown |
//! | `POST /api/v1/validate` | checks a report's `json_data` against the accepted criteria |
//! | `POST /api/v1/report` | posts a report; status `Completed` makes it the final report, which must validate |
//! | `GET /api/v1/parameters` | the run's runtime parameters (Sealroom addition) |
//!
//! It is served over TLS (a self-signed certificate for `localhost`, as the seed's examples use
//! `verify=False`) on a unix socket that is bound into the sandbox; see
//! [`crate::forwarder`] for how `https://localhost:5000` reaches it.

pub mod data;
mod http;
mod tls;

use std::sync::{Arc, Mutex};

use sealroom_criteria::Criteria;

pub use http::serve;
pub use tls::self_signed_acceptor;

use data::DataSource;

/// Largest request body accepted (reports included).
pub const MAX_BODY: usize = 16 << 20;

/// The identifiers a run's algorithm sees.
#[derive(Debug, Clone, Default)]
pub struct RunIds {
    /// `ESCROW_PROJECT_ID`.
    pub project: String,
    /// `ESCROW_RUN_ID`.
    pub run: String,
    /// `ESCROW_RUN_CONFIG_ID`.
    pub run_config: String,
}

/// A report the algorithm posted.
#[derive(Debug, Clone, PartialEq)]
pub struct PostedReport {
    /// Its `name`.
    pub name: String,
    /// Its `status` (`In Progress`, `Completed`, ...).
    pub status: String,
    /// The decoded `json_data` (any JSON value).
    pub document: serde_json::Value,
}

/// What the algorithm has reported so far.
#[derive(Debug, Default, Clone)]
pub struct Reports {
    /// Every report that was not final, in order.
    pub progress: Vec<PostedReport>,
    /// The final report, once one validated.
    pub final_report: Option<PostedReport>,
    /// Final reports that failed validation (their content is dropped: it must not leave).
    pub rejected_finals: usize,
}

/// The state behind one run's Enclave API.
#[derive(Debug)]
pub struct EnclaveApi {
    data: Arc<dyn DataSource>,
    criteria: Criteria,
    parameters: Vec<(String, String)>,
    ids: RunIds,
    reports: Mutex<Reports>,
}

impl EnclaveApi {
    /// The API for one run.
    pub fn new(
        data: Arc<dyn DataSource>,
        criteria: Criteria,
        parameters: Vec<(String, String)>,
        ids: RunIds,
    ) -> Self {
        EnclaveApi {
            data,
            criteria,
            parameters,
            ids,
            reports: Mutex::new(Reports::default()),
        }
    }

    /// A copy of the reports so far.
    pub fn reports(&self) -> Reports {
        match self.reports.lock() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The run's identifiers.
    pub fn ids(&self) -> &RunIds {
        &self.ids
    }

    fn with_reports<T>(&self, f: impl FnOnce(&mut Reports) -> T) -> T {
        match self.reports.lock() {
            Ok(mut r) => f(&mut r),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }
}
