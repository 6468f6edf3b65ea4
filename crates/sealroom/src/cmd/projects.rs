//! `sealroom projects ...` and `sealroom project-keys ...`: projects, members, settings, the
//! KEK download and the WCEK upload.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use sealroom_client::{MemberSpec, NewProject, ProjectPage};
use sealroom_types::{OrgId, ProjectId, ProjectState, Role, Technology, WcekVersion};
use serde_json::json;

use super::api::{self, parse, parse_role, Conn, Table};

#[derive(Debug, Args)]
pub struct ProjectsArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    command: ProjectsCommand,
}

#[derive(Debug, Subcommand)]
pub enum ProjectsCommand {
    /// Create a project between one AO and one or more DS organizations (admin).
    Create {
        /// Unique name.
        #[arg(long)]
        name: String,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
        /// The confidential-compute technology, fixed for the project's life
        /// (simulated, sev-snp, tdx, azure-cvm).
        #[arg(long, value_parser = parse::<Technology>)]
        technology: Technology,
        /// The algorithm owner organization's ID.
        #[arg(long, value_parser = parse::<OrgId>)]
        ao: OrgId,
        /// A data steward organization's ID (repeat for several).
        #[arg(long, value_parser = parse::<OrgId>, required = true)]
        ds: Vec<OrgId>,
    },
    /// The projects you may see, with your role.
    List,
    /// A project's page: members, keys, latest WCEKs.
    Show {
        /// The project's ID.
        #[arg(value_parser = parse::<ProjectId>)]
        project: ProjectId,
    },
    /// Set a project's state: active, paused or deactivated (admin).
    State {
        /// The project's ID.
        #[arg(value_parser = parse::<ProjectId>)]
        project: ProjectId,
        /// The new state.
        #[arg(value_parser = parse::<ProjectState>)]
        state: ProjectState,
    },
    /// Add a member organization (admin).
    AddMember {
        /// The project's ID.
        #[arg(value_parser = parse::<ProjectId>)]
        project: ProjectId,
        /// The organization's ID.
        #[arg(long, value_parser = parse::<OrgId>)]
        org: OrgId,
        /// Its role: ao or ds.
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
    /// Project settings a data steward decides.
    Settings {
        /// The project's ID.
        #[arg(value_parser = parse::<ProjectId>)]
        project: ProjectId,
        /// Whether the algorithm owner sees what the algorithm itself prints.
        #[arg(long, action = clap::ArgAction::Set, value_name = "true|false")]
        algorithm_logs_to_ao: bool,
    },
}

#[derive(Debug, Args)]
pub struct ProjectKeysArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    command: ProjectKeysCommand,
}

#[derive(Debug, Subcommand)]
pub enum ProjectKeysCommand {
    /// Download your role's KEK (SPKI DER) to wrap your CEK with `sealroom keys wrap`.
    Kek {
        /// The project's ID.
        #[arg(long, value_parser = parse::<ProjectId>)]
        project: ProjectId,
        /// Your role: ao or ds.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// A directory (the server's file name is kept) or a new file path. Default: `.`.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Upload your WCEK (`sealroom keys wrap` output); the server checks it unwraps.
    Wcek {
        /// The project's ID.
        #[arg(long, value_parser = parse::<ProjectId>)]
        project: ProjectId,
        /// Your role: ao or ds.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// The WCEK file.
        wcek: PathBuf,
    },
    /// Every WCEK version of a role.
    Wceks {
        /// The project's ID.
        #[arg(long, value_parser = parse::<ProjectId>)]
        project: ProjectId,
        /// The role: ao or ds.
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
}

fn show_page(p: &ProjectPage) {
    api::fields(&[
        ("project", format!("{} ({})", p.project.name, p.project.id)),
        ("description", p.project.description.clone()),
        ("state", p.project.state.to_string()),
        ("technology", p.project.technology.to_string()),
        (
            "algorithm logs to AO",
            p.project.algorithm_logs_to_ao.to_string(),
        ),
        ("your role", api::opt(p.my_role)),
    ]);
    println!();
    let mut t = Table::new(&["ORG", "NAME", "ROLE"]);
    for m in &p.members {
        t.row(vec![
            m.org_id.to_string(),
            m.org_name.clone(),
            m.role.to_string(),
        ]);
    }
    t.print();
    println!();
    let mut t = Table::new(&["KEK", "FILE", "FINGERPRINT", "LATEST WCEK"]);
    for k in &p.keys {
        let latest = match k.role {
            Role::AlgorithmOwner => &p.latest_wceks.algorithm_owner,
            Role::DataSteward => &p.latest_wceks.data_steward,
        };
        t.row(vec![
            k.role.to_string(),
            k.file_name.clone(),
            k.fingerprint.clone(),
            latest
                .as_ref()
                .map(|w| format!("v{} {}", w.version, w.fingerprint))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    t.print();
}

pub fn projects(args: ProjectsArgs) -> anyhow::Result<ExitCode> {
    let client = args.conn.client()?;
    match args.command {
        ProjectsCommand::Create {
            name,
            description,
            technology,
            ao,
            ds,
        } => {
            let mut members = vec![MemberSpec {
                org_id: ao,
                role: Role::AlgorithmOwner,
            }];
            members.extend(ds.into_iter().map(|org_id| MemberSpec {
                org_id,
                role: Role::DataSteward,
            }));
            let page = client.create_project(&NewProject {
                name: &name,
                description: &description,
                technology,
                members,
            })?;
            args.conn.emit(&page, || show_page(&page))?;
        }
        ProjectsCommand::List => {
            let items = client.list_all_projects()?;
            args.conn.emit(&items, || {
                let mut t = Table::new(&["ID", "NAME", "STATE", "TECHNOLOGY", "MY ROLE"]);
                for p in &items {
                    t.row(vec![
                        p.project.id.to_string(),
                        p.project.name.to_string(),
                        p.project.state.to_string(),
                        p.project.technology.to_string(),
                        api::opt(p.my_role),
                    ]);
                }
                t.print();
            })?;
        }
        ProjectsCommand::Show { project } => {
            let page = client.project(project)?;
            args.conn.emit(&page, || show_page(&page))?;
        }
        ProjectsCommand::State { project, state } => {
            let v = client.set_project_state(project, state)?;
            let out = if v.is_null() {
                json!({"project": project, "state": state})
            } else {
                v
            };
            args.conn
                .emit(&out, || println!("project {project} is now {state}"))?;
        }
        ProjectsCommand::AddMember { project, org, role } => {
            let v = client.add_project_member(project, org, role)?;
            let out = if v.is_null() {
                json!({"project": project, "org_id": org, "role": role})
            } else {
                v
            };
            args.conn
                .emit(&out, || println!("added {org} to {project} as {role}"))?;
        }
        ProjectsCommand::Settings {
            project,
            algorithm_logs_to_ao,
        } => {
            let v = client.set_project_settings(project, algorithm_logs_to_ao)?;
            let out = if v.is_null() {
                json!({"project": project, "algorithm_logs_to_ao": algorithm_logs_to_ao})
            } else {
                v
            };
            args.conn.emit(&out, || {
                println!("algorithm logs to the AO: {algorithm_logs_to_ao}")
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn wcek_table(ws: &[WcekVersion]) {
    let mut t = Table::new(&["VERSION", "FINGERPRINT", "CEK KEY ID", "LATEST", "UPLOADED"]);
    for w in ws {
        t.row(vec![
            w.version.to_string(),
            w.fingerprint.clone(),
            api::opt(w.cek_key_id.as_deref()),
            w.is_latest.to_string(),
            w.created_at.to_rfc3339(),
        ]);
    }
    t.print();
}

/// Largest WCEK file read (the server takes at most 1024 bytes).
const MAX_WCEK_FILE: u64 = 64 * 1024;

pub fn project_keys(args: ProjectKeysArgs) -> anyhow::Result<ExitCode> {
    let client = args.conn.client()?;
    match args.command {
        ProjectKeysCommand::Kek {
            project,
            role,
            output,
        } => {
            // Download into memory first (a KEK is ~550 bytes) so that the file name the server
            // suggests can be used and nothing is left behind on failure.
            let mut der = Vec::new();
            let dl = client.download_kek(project, role, &mut der)?;
            let fallback = format!("{project}-{}.der", role.short());
            let name = dl.file_name.clone().unwrap_or(fallback);
            let path = match output {
                None => PathBuf::from(&name),
                Some(p) if p.is_dir() => p.join(&name),
                Some(p) => p,
            };
            write_new(&path, &der)?;
            args.conn.emit(
                &json!({"path": path, "bytes": der.len(), "role": role}),
                || {
                    println!(
                        "wrote {} ({} KEK, {} bytes)",
                        path.display(),
                        role,
                        der.len()
                    )
                },
            )?;
        }
        ProjectKeysCommand::Wcek {
            project,
            role,
            wcek,
        } => {
            let len = std::fs::metadata(&wcek)
                .with_context(|| format!("cannot read {}", wcek.display()))?
                .len();
            if len > MAX_WCEK_FILE {
                anyhow::bail!(sealroom_envelope::Error::KeyFile {
                    path: wcek,
                    reason: format!("{len} bytes is too large for a WCEK"),
                });
            }
            let bytes =
                std::fs::read(&wcek).with_context(|| format!("cannot read {}", wcek.display()))?;
            let v = client.upload_wcek(project, role, &bytes)?;
            args.conn.emit(&v, || {
                println!(
                    "uploaded WCEK version {} for {role} (fingerprint {})",
                    v.version, v.fingerprint
                )
            })?;
        }
        ProjectKeysCommand::Wceks { project, role } => {
            let ws = client.list_wceks(project, role)?;
            args.conn.emit(&ws, || wcek_table(&ws))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The error of creating a new output file: one that exists already is a usage error (exit 2,
/// as for the local tools without `--force`), anything else an I/O error (16).
pub(crate) fn create_error(path: &std::path::Path, e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::AlreadyExists {
        sealroom_envelope::Error::Usage(format!(
            "{} already exists: give another -o path (nothing is overwritten)",
            path.display()
        ))
        .into()
    } else {
        sealroom_envelope::Error::io(format!("cannot create {}", path.display()), e).into()
    }
}

/// Writes a file that must not exist yet.
pub(crate) fn write_new(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| create_error(path, e))?;
    f.write_all(bytes)
        .map_err(|e| sealroom_envelope::Error::io(format!("cannot write {}", path.display()), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct P {
        #[command(subcommand)]
        c: ProjectsCommand,
    }

    #[derive(Debug, Parser)]
    struct K {
        #[command(subcommand)]
        c: ProjectKeysCommand,
    }

    const ID: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    const ID2: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c";

    #[test]
    fn create_takes_one_ao_and_several_ds() {
        let p = P::try_parse_from([
            "p",
            "create",
            "--name",
            "Trial",
            "--technology",
            "sev-snp",
            "--ao",
            ID,
            "--ds",
            ID2,
            "--ds",
            ID,
        ])
        .unwrap();
        match p.c {
            ProjectsCommand::Create { technology, ds, .. } => {
                assert_eq!(technology, Technology::SevSnp);
                assert_eq!(ds.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        assert!(P::try_parse_from([
            "p",
            "create",
            "--name",
            "T",
            "--technology",
            "simulated",
            "--ao",
            ID
        ])
        .is_err());
        assert!(P::try_parse_from([
            "p",
            "create",
            "--name",
            "T",
            "--technology",
            "quantum",
            "--ao",
            ID,
            "--ds",
            ID2
        ])
        .is_err());
    }

    #[test]
    fn states_roles_and_settings() {
        assert!(P::try_parse_from(["p", "state", ID, "paused"]).is_ok());
        assert!(P::try_parse_from(["p", "state", ID, "asleep"]).is_err());
        assert!(P::try_parse_from(["p", "add-member", ID, "--org", ID2, "--role", "ds"]).is_ok());
        let s =
            P::try_parse_from(["p", "settings", ID, "--algorithm-logs-to-ao", "false"]).unwrap();
        assert!(matches!(
            s.c,
            ProjectsCommand::Settings {
                algorithm_logs_to_ao: false,
                ..
            }
        ));
        let k =
            K::try_parse_from(["k", "kek", "--project", ID, "--role", "algorithm_owner"]).unwrap();
        assert!(matches!(
            k.c,
            ProjectKeysCommand::Kek {
                role: Role::AlgorithmOwner,
                ..
            }
        ));
        assert!(
            K::try_parse_from(["k", "wcek", "--project", ID, "--role", "admin", "w.bkenc"])
                .is_err()
        );
    }
}
