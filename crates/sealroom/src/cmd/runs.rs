//! `sealroom run-configs ...` and `sealroom runs ...`: configurations, run requests, the DS's
//! decisions, status, logs, outputs and the final report.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use sealroom_client::{NewRun, NewRunConfig};
use sealroom_types::{
    LogStream, ProjectId, Run, RunConfig, RunConfigId, RunId, RuntimeParamName, VersionId,
};
use serde_json::json;

use super::api::{self, parse, Conn, Table};
use super::artifacts::{download_path, download_to};

#[derive(Debug, Args)]
pub struct RunConfigsArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    command: RunConfigsCommand,
}

#[derive(Debug, Subcommand)]
pub enum RunConfigsCommand {
    /// Pair an algorithm version with a dataset version (AO).
    Create {
        /// The project's ID.
        #[arg(long, value_parser = parse::<ProjectId>)]
        project: ProjectId,
        /// Name shown to people.
        #[arg(long)]
        name: String,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
        /// The algorithm version's ID.
        #[arg(long, value_parser = parse::<VersionId>)]
        algorithm_version: VersionId,
        /// The dataset version's ID.
        #[arg(long, value_parser = parse::<VersionId>)]
        dataset_version: VersionId,
        /// For validation algorithms: the accepted criteria version's ID.
        #[arg(long, value_parser = parse::<VersionId>)]
        criteria_version: Option<VersionId>,
    },
    /// A project's run configurations.
    List {
        /// The project's ID.
        #[arg(long, value_parser = parse::<ProjectId>)]
        project: ProjectId,
    },
    /// One run configuration.
    Show {
        /// Its ID.
        #[arg(value_parser = parse::<RunConfigId>)]
        id: RunConfigId,
    },
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    command: RunsCommand,
}

/// One `--param NAME=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param(pub String, pub String);

fn parse_param(s: &str) -> Result<Param, String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not NAME=VALUE"))?;
    let name = RuntimeParamName::parse(name).map_err(|e| e.to_string())?;
    Ok(Param(name.as_str().to_string(), value.to_string()))
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Request a run of a configuration (AO); the DS initiates or rejects it.
    Request {
        /// The run configuration's ID.
        #[arg(long, value_parser = parse::<RunConfigId>)]
        config: RunConfigId,
        /// A runtime parameter NAME=VALUE (an environment variable in the enclave); repeat.
        #[arg(long = "param", value_parser = parse_param, value_name = "NAME=VALUE")]
        params: Vec<Param>,
        /// vCPUs (one of the project technology's sizes).
        #[arg(long, default_value_t = 1)]
        vcpus: u32,
        /// RAM in GiB (one of the project technology's sizes).
        #[arg(long, default_value_t = 2)]
        ram_gib: u32,
    },
    /// A project's runs.
    List {
        /// The project's ID.
        #[arg(long, value_parser = parse::<ProjectId>)]
        project: ProjectId,
        /// Only this configuration's runs.
        #[arg(long, value_parser = parse::<RunConfigId>)]
        config: Option<RunConfigId>,
    },
    /// A run's state and stage history.
    Status {
        /// The run's ID.
        #[arg(value_parser = parse::<RunId>)]
        run: RunId,
    },
    /// Initiate a requested run at your site (DS).
    Initiate {
        /// The run's ID.
        #[arg(value_parser = parse::<RunId>)]
        run: RunId,
    },
    /// Reject a requested run, telling the AO why (DS).
    Reject {
        /// The run's ID.
        #[arg(value_parser = parse::<RunId>)]
        run: RunId,
        /// The reason the AO is told.
        #[arg(long)]
        reason: String,
    },
    /// Cancel an initiated or running run (DS).
    Cancel {
        /// The run's ID.
        #[arg(value_parser = parse::<RunId>)]
        run: RunId,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// The validated final report (AO), as JSON.
    Report {
        /// The run's ID.
        #[arg(value_parser = parse::<RunId>)]
        run: RunId,
        /// Write it to this new file instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// A run's log lines.
    Logs {
        /// The run's ID.
        #[arg(value_parser = parse::<RunId>)]
        run: RunId,
        /// stage or algorithm (default: every log you may read).
        #[arg(long, value_parser = parse::<LogStream>)]
        stream: Option<LogStream>,
        /// Only lines after this sequence number.
        #[arg(long)]
        after: Option<i64>,
        /// At most this many lines.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// A run's outputs (the DS sees their size, hash and verdict).
    Outputs {
        /// The run's ID.
        #[arg(value_parser = parse::<RunId>)]
        run: RunId,
    },
    /// Download one output's content (its owner).
    Download {
        /// The run's ID.
        #[arg(value_parser = parse::<RunId>)]
        run: RunId,
        /// The output's ID (from `sealroom runs outputs`).
        output_id: String,
        /// A directory or a new file path. Default: `.`.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

fn config_table(items: &[RunConfig]) {
    let mut t = Table::new(&["ID", "NAME", "ALGORITHM", "DATASET", "CRITERIA"]);
    for c in items {
        t.row(vec![
            c.id.to_string(),
            c.name.to_string(),
            c.algorithm_version_id.to_string(),
            c.dataset_version_id.to_string(),
            api::opt(c.criteria_version_id),
        ]);
    }
    t.print();
}

fn run_table(items: &[Run]) {
    let mut t = Table::new(&["ID", "STATE", "CONFIG", "COMPUTE", "REQUESTED", "REASON"]);
    for r in items {
        t.row(vec![
            r.id.to_string(),
            r.state.to_string(),
            r.run_config_id.to_string(),
            format!("{} vCPU / {} GiB", r.compute.vcpus, r.compute.ram_gib),
            r.requested_at.to_rfc3339(),
            api::opt(r.reason.as_deref()),
        ]);
    }
    t.print();
}

/// Prints a state-change answer, or a summary when the server sent none.
fn emit_action(conn: &Conn, v: serde_json::Value, run: RunId, what: &str) -> anyhow::Result<()> {
    let out = if v.is_null() {
        json!({"run": run, "action": what})
    } else {
        v
    };
    let state = out["state"]
        .as_str()
        .or_else(|| out["run"]["state"].as_str())
        .map(|s| format!(" (now {s})"))
        .unwrap_or_default();
    conn.emit(&out, || println!("{what} run {run}{state}"))
}

pub fn run_configs(args: RunConfigsArgs) -> anyhow::Result<ExitCode> {
    let client = args.conn.client()?;
    let conn = &args.conn;
    match args.command {
        RunConfigsCommand::Create {
            project,
            name,
            description,
            algorithm_version,
            dataset_version,
            criteria_version,
        } => {
            let c = client.create_run_config(
                project,
                &NewRunConfig {
                    name: &name,
                    description: &description,
                    algorithm_version_id: algorithm_version,
                    dataset_version_id: dataset_version,
                    criteria_version_id: criteria_version,
                },
            )?;
            conn.emit(&c, || {
                println!("created run configuration {} ({})", c.name, c.id)
            })?;
        }
        RunConfigsCommand::List { project } => {
            let items = client.list_run_configs(project)?;
            conn.emit(&items, || config_table(&items))?;
        }
        RunConfigsCommand::Show { id } => {
            let c = client.run_config(id)?;
            conn.emit(&c, || config_table(std::slice::from_ref(&c)))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The request body of `runs request` (kept apart so that tests can check it).
pub fn new_run(params: &[Param], vcpus: u32, ram_gib: u32) -> anyhow::Result<NewRun> {
    let mut map = BTreeMap::new();
    for Param(k, v) in params {
        if map.insert(k.clone(), v.clone()).is_some() {
            return Err(api::Usage(format!("--param {k} is given twice")).into());
        }
    }
    Ok(NewRun {
        params: map,
        vcpus,
        ram_gib,
    })
}

pub fn runs(args: RunsArgs) -> anyhow::Result<ExitCode> {
    let client = args.conn.client()?;
    let conn = &args.conn;
    match args.command {
        RunsCommand::Request {
            config,
            params,
            vcpus,
            ram_gib,
        } => {
            let body = new_run(&params, vcpus, ram_gib)?;
            let r = client.request_run(config, &body)?;
            conn.emit(&r, || println!("requested run {} ({})", r.id, r.state))?;
        }
        RunsCommand::List { project, config } => {
            let items = client.list_runs(project, config)?;
            conn.emit(&items, || run_table(&items))?;
        }
        RunsCommand::Status { run } => {
            let d = client.run(run)?;
            conn.emit(&d, || {
                api::fields(&[
                    ("run", d.run.id.to_string()),
                    ("state", d.run.state.to_string()),
                    ("configuration", d.run.run_config_id.to_string()),
                    (
                        "compute",
                        format!(
                            "{} vCPU / {} GiB",
                            d.run.compute.vcpus, d.run.compute.ram_gib
                        ),
                    ),
                    (
                        "parameters",
                        d.run
                            .params
                            .as_slice()
                            .iter()
                            .map(|p| format!("{}={}", p.name.as_str(), p.value))
                            .collect::<Vec<_>>()
                            .join(" "),
                    ),
                    ("reason", api::opt(d.run.reason.as_deref())),
                    ("site", api::opt(d.run.site_id)),
                ]);
                println!();
                let mut t = Table::new(&["#", "AT", "FROM", "TO", "BY", "MESSAGE"]);
                for h in &d.history {
                    t.row(vec![
                        h.seq.to_string(),
                        h.at.to_rfc3339(),
                        api::opt(h.from),
                        h.to.to_string(),
                        h.actor.to_string(),
                        api::opt(h.message.as_deref()),
                    ]);
                }
                t.print();
            })?;
        }
        RunsCommand::Initiate { run } => {
            let v = client.initiate_run(run)?;
            emit_action(conn, v, run, "initiated")?;
        }
        RunsCommand::Reject { run, reason } => {
            let v = client.reject_run(run, &reason)?;
            emit_action(conn, v, run, "rejected")?;
        }
        RunsCommand::Cancel { run, reason } => {
            let v = client.cancel_run(run, reason.as_deref())?;
            emit_action(conn, v, run, "cancelled")?;
        }
        RunsCommand::Report { run, output } => {
            let report = client.run_report(run)?;
            let text = serde_json::to_string_pretty(&report)?;
            match output {
                Some(path) => {
                    super::projects::write_new(&path, format!("{text}\n").as_bytes())?;
                    if conn.json {
                        println!("{}", json!({"path": path}));
                    } else {
                        println!("wrote {}", path.display());
                    }
                }
                None if conn.json => println!("{}", serde_json::to_string(&report)?),
                None => println!("{text}"),
            }
        }
        RunsCommand::Logs {
            run,
            stream,
            after,
            limit,
        } => {
            let page = client.run_logs(run, stream, after, limit)?;
            conn.emit(&page, || {
                for l in &page.lines {
                    let line: String = l
                        .line
                        .chars()
                        .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
                        .collect();
                    println!("{} {:<9} {line}", l.at.to_rfc3339(), l.stream.as_str());
                }
            })?;
        }
        RunsCommand::Outputs { run } => {
            let items = client.run_outputs(run)?;
            conn.emit(&items, || {
                let mut t =
                    Table::new(&["ID", "KIND", "NAME", "SIZE", "SHA-256", "PASSED", "YOURS"]);
                for o in &items {
                    t.row(vec![
                        o.id.clone(),
                        o.kind.to_string(),
                        o.name.clone(),
                        o.size.to_string(),
                        api::opt(o.sha256.as_deref()),
                        api::opt(o.passed_criteria),
                        api::opt(o.content_visible),
                    ]);
                }
                t.print();
            })?;
        }
        RunsCommand::Download {
            run,
            output_id,
            output,
        } => {
            // An output ID is `<kind>:<name>`; the name (letters, digits, `.`, `_`, `-`) is
            // the default file name.
            let name = output_id
                .split_once(':')
                .and_then(|(_, n)| sealroom_client::attachment_name(&format!("filename=\"{n}\"")))
                .unwrap_or_else(|| format!("{run}-output"));
            let path = download_path(output, &name);
            let bytes = download_to(&path, 0, |out, progress| {
                client.download_output(run, &output_id, out, progress)
            })?;
            conn.emit(&json!({"path": path, "bytes": bytes}), || {
                println!("wrote {} ({bytes} bytes)", path.display())
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct R {
        #[command(subcommand)]
        c: RunsCommand,
    }

    const ID: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

    #[test]
    fn params_are_parsed_and_checked() {
        let r = R::try_parse_from([
            "r",
            "request",
            "--config",
            ID,
            "--param",
            "epochs=3",
            "--param",
            "learning_rate=0.01=x",
            "--vcpus",
            "2",
            "--ram-gib",
            "4",
        ])
        .unwrap();
        let RunsCommand::Request {
            params,
            vcpus,
            ram_gib,
            ..
        } = r.c
        else {
            panic!("not a request")
        };
        let body = new_run(&params, vcpus, ram_gib).unwrap();
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            json!({"params": {"epochs": "3", "learning_rate": "0.01=x"}, "vcpus": 2, "ram_gib": 4})
        );
        assert!(R::try_parse_from(["r", "request", "--config", ID, "--param", "2fast=1"]).is_err());
        assert!(R::try_parse_from(["r", "request", "--config", ID, "--param", "novalue"]).is_err());
        let dup = [Param("a".into(), "1".into()), Param("a".into(), "2".into())];
        assert!(new_run(&dup, 1, 2).is_err());
    }

    #[test]
    fn decisions_need_their_arguments() {
        assert!(R::try_parse_from(["r", "reject", ID]).is_err());
        assert!(R::try_parse_from(["r", "reject", ID, "--reason", "wrong dataset"]).is_ok());
        assert!(R::try_parse_from(["r", "cancel", ID]).is_ok());
        assert!(
            R::try_parse_from(["r", "logs", ID, "--stream", "algorithm", "--after", "10"]).is_ok()
        );
        assert!(R::try_parse_from(["r", "logs", ID, "--stream", "stdout"]).is_err());
    }
}
