//! `sealroom audit verify`: checks the hash-chained audit log by reading the metadata database
//! directly (no server needed), and names every modified or deleted entry. See `docs/audit.md`.
//! `sealroom audit list`: the entries, through the server's API (admin).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use sealroom_store::{AuditProblem, AuditVerification, StoreConfig};

use super::api::{self, Conn, Table};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute every hash and link of the audit log: exit 0 if intact, 1 if any entry was
    /// modified or deleted (each is named).
    Verify(VerifyArgs),
    /// The audit log's entries in sequence order, from the server (admin).
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    conn: Conn,
    /// Only entries after this sequence number.
    #[arg(long, value_name = "SEQ")]
    after: Option<i64>,
    /// At most this many entries (1 to 500; default 50).
    #[arg(long, value_name = "N")]
    limit: Option<u32>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The server's data directory; the database is DIR/sealroom.db [env: SEALROOM_DATA_DIR]
    /// [default: ./sealroom-data].
    #[arg(long, value_name = "DIR", conflicts_with = "database_url")]
    data_dir: Option<PathBuf>,
    /// The metadata database instead: sqlite://PATH or postgres://USER:PASS@HOST:PORT/DB
    /// [env: SEALROOM_DATABASE_URL]. Options on the command line win over the environment.
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Print the result as JSON: {intact, entries_checked, head_seq, problems:[{kind, seq |
    /// from_seq, to_seq, message}]} (the same shape as GET /api/v1/audit/verify).
    #[arg(long)]
    json: bool,
}

/// A non-empty environment variable.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

pub fn run(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify(a) => verify(&a),
        AuditCommand::List(a) => list(&a),
    }
}

fn list(a: &ListArgs) -> anyhow::Result<ExitCode> {
    let client = a.conn.client()?;
    let page = client.audit(a.after, a.limit)?;
    a.conn.emit(&page.items, || {
        let mut t = Table::new(&[
            "SEQ", "AT", "ACTOR", "ACTION", "OUTCOME", "PROJECT", "OBJECT",
        ]);
        for e in &page.items {
            t.row(vec![
                e.seq.to_string(),
                e.at.to_rfc3339(),
                e.actor.to_string(),
                e.action.clone(),
                e.outcome.to_string(),
                api::opt(e.project_id),
                api::opt(e.object.as_deref()),
            ]);
        }
        t.print();
        if let Some(next) = page.next_after {
            eprintln!("more entries: --after {next}");
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Where the database is: `--database-url`, `--data-dir`, then `SEALROOM_DATABASE_URL`,
/// `SEALROOM_DATA_DIR`, then `./sealroom-data`. Never creates an empty SQLite database.
fn store_config(a: &VerifyArgs) -> anyhow::Result<StoreConfig> {
    let url = match (&a.database_url, &a.data_dir) {
        (Some(url), _) => Some(url.clone()),
        (None, Some(_)) => None,
        (None, None) => env_var("SEALROOM_DATABASE_URL"),
    };
    if let Some(url) = url {
        let config = StoreConfig::from_url(url);
        config.backend().context("the database URL")?;
        return Ok(config);
    }
    let data_dir = a
        .data_dir
        .clone()
        .or_else(|| env_var("SEALROOM_DATA_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("./sealroom-data"));
    let db = data_dir.join("sealroom.db");
    if !db.is_file() {
        bail!(
            "no Sealroom database at {} (give the server's --data-dir, or --database-url)",
            db.display()
        );
    }
    Ok(StoreConfig::sqlite_in_data_dir(&data_dir))
}

fn verify(a: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let mut config = store_config(a)?;
    config.max_connections = 1;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let v = runtime.block_on(async {
        let store = sealroom_store::open(&config)
            .await
            .context("cannot open the metadata database")?;
        store
            .verify_audit_chain()
            .await
            .context("cannot read the audit log")
    })?;
    if a.json {
        println!("{}", report_json(&v));
    } else {
        print!("{}", report_text(&v));
    }
    Ok(if v.is_intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::FAILURE)
    })
}

fn problem_json(p: &AuditProblem) -> serde_json::Value {
    let message = p.to_string();
    match *p {
        AuditProblem::Modified { seq } => {
            serde_json::json!({ "kind": "modified", "seq": seq, "message": message })
        }
        AuditProblem::BrokenLink { seq } => {
            serde_json::json!({ "kind": "broken_link", "seq": seq, "message": message })
        }
        AuditProblem::Missing { from_seq, to_seq } => serde_json::json!({
            "kind": "missing", "from_seq": from_seq, "to_seq": to_seq, "message": message
        }),
    }
}

fn report_json(v: &AuditVerification) -> serde_json::Value {
    serde_json::json!({
        "intact": v.is_intact(),
        "entries_checked": v.entries_checked,
        "head_seq": v.head_seq,
        "problems": v.problems.iter().map(problem_json).collect::<Vec<_>>(),
    })
}

fn report_text(v: &AuditVerification) -> String {
    let mut out = String::new();
    if v.is_intact() {
        out.push_str(&format!(
            "audit log intact: {} entries checked, head at entry {}\n",
            v.entries_checked, v.head_seq
        ));
        return out;
    }
    for p in &v.problems {
        out.push_str(&format!("TAMPERED: {p}\n"));
    }
    let n = v.problems.len();
    out.push_str(&format!(
        "audit log NOT intact: {n} problem{} in {} entries checked, head at entry {}\n",
        if n == 1 { "" } else { "s" },
        v.entries_checked,
        v.head_seq
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_names_each_entry() {
        let v = AuditVerification {
            entries_checked: 9,
            head_seq: 10,
            problems: vec![
                AuditProblem::Modified { seq: 3 },
                AuditProblem::Missing {
                    from_seq: 5,
                    to_seq: 5,
                },
            ],
        };
        assert_eq!(
            report_text(&v),
            "TAMPERED: entry 3 was modified\nTAMPERED: entry 5 was deleted\n\
             audit log NOT intact: 2 problems in 9 entries checked, head at entry 10\n"
        );
        assert_eq!(
            report_json(&v)["problems"][1],
            serde_json::json!({ "kind": "missing", "from_seq": 5, "to_seq": 5,
                "message": "entry 5 was deleted" })
        );
    }
}
