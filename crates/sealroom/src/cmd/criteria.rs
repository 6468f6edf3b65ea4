//! `sealroom criteria check|lint`: validation criteria (Cerberus schemas) as the Enclave API
//! applies them to a final report (`POST /api/v1/validate`). See `docs/criteria.md`.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use sealroom_criteria::{Criteria, Limits};

#[derive(Debug, Subcommand)]
pub enum CriteriaCommand {
    /// Validate DOCUMENT against CRITERIA as the Enclave API does: exit 0 if valid, 1 if not.
    Check(CheckArgs),
    /// Check that CRITERIA is a usable criteria file (what the control plane accepts on upload).
    Lint(LintArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The validation criteria (a Cerberus schema, JSON).
    #[arg(value_name = "CRITERIA.json")]
    criteria: PathBuf,
    /// The document to validate (the report's JSON data).
    #[arg(value_name = "DOCUMENT.json")]
    document: PathBuf,
    /// Print the Enclave API's response body:
    /// {"status":"successful"|"failed","message":{field:[errors]}}.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// The validation criteria (a Cerberus schema, JSON).
    #[arg(value_name = "CRITERIA.json")]
    criteria: PathBuf,
}

pub fn run(command: CriteriaCommand) -> anyhow::Result<ExitCode> {
    match command {
        CriteriaCommand::Check(a) => check(&a),
        CriteriaCommand::Lint(a) => lint(&a),
    }
}

/// Reads at most `limit` bytes of `path`, refusing anything longer.
fn read_limited(path: &Path, limit: usize, what: &str) -> anyhow::Result<Vec<u8>> {
    let file =
        File::open(path).with_context(|| format!("cannot open {what} {}", path.display()))?;
    let mut buf = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    if buf.len() > limit {
        bail!(
            "{what} {} is larger than the limit of {limit} bytes",
            path.display()
        );
    }
    Ok(buf)
}

fn load_criteria(path: &Path, limits: &Limits) -> anyhow::Result<Criteria> {
    let bytes = read_limited(path, limits.criteria_json.max_bytes, "criteria file")?;
    Criteria::from_json_with(&bytes, limits)
        .with_context(|| format!("{} is not usable criteria", path.display()))
}

fn check(a: &CheckArgs) -> anyhow::Result<ExitCode> {
    let limits = Limits::default();
    let criteria = load_criteria(&a.criteria, &limits)?;
    let doc = read_limited(&a.document, limits.document_json.max_bytes, "document")?;
    let report = criteria
        .validate_json(&doc)
        .with_context(|| format!("cannot validate {}", a.document.display()))?;
    if a.json {
        println!("{}", report.response_json());
    } else if report.is_valid() {
        println!(
            "valid: {} satisfies {}",
            a.document.display(),
            a.criteria.display()
        );
    } else {
        let errors = report.errors().flatten();
        let n = errors.len();
        println!(
            "invalid: {} fails {} ({n} error{})",
            a.document.display(),
            a.criteria.display(),
            if n == 1 { "" } else { "s" }
        );
        for (path, message) in errors {
            println!("  {path}: {message}");
        }
    }
    Ok(if report.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn lint(a: &LintArgs) -> anyhow::Result<ExitCode> {
    let criteria = load_criteria(&a.criteria, &Limits::default())?;
    let fields: Vec<&str> = criteria.fields().collect();
    println!(
        "ok: {} defines {} top-level field(s): {}",
        a.criteria.display(),
        fields.len(),
        fields.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}
