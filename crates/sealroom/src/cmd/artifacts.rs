//! `sealroom artifacts ...` and `sealroom storage ...`: artifacts and their versions, package
//! upload, acceptance and certification, downloads; the DS's sealed files in the built-in store.

use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use sealroom_client::{FileVersion, NewArtifact, NewJsonVersion, Upload, VersionView};
use sealroom_envelope::Error;
use sealroom_types::{AlgorithmType, Artifact, ArtifactId, ArtifactKind, ProjectId, VersionId};
use serde_json::json;

use super::api::{self, parse, Conn, Table};
use super::package;
use crate::progress::Bar;

#[derive(Debug, Args)]
pub struct ArtifactsArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    command: ArtifactsCommand,
}

#[derive(Debug, Subcommand)]
pub enum ArtifactsCommand {
    /// Create an artifact (its kind's owner role: AO for data_specification, algorithm,
    /// validation_criteria; DS for attestation_report, dataset).
    Create {
        /// The project's ID.
        #[arg(long, value_parser = parse::<ProjectId>)]
        project: ProjectId,
        /// data_specification, attestation_report, algorithm, validation_criteria, dataset.
        #[arg(long, value_parser = parse::<ArtifactKind>)]
        kind: ArtifactKind,
        /// Name, unique per project and kind.
        #[arg(long)]
        name: String,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
        /// For algorithms: training or validation.
        #[arg(long, value_parser = parse::<AlgorithmType>)]
        algorithm_type: Option<AlgorithmType>,
    },
    /// A project's artifacts.
    List {
        /// The project's ID.
        #[arg(long, value_parser = parse::<ProjectId>)]
        project: ProjectId,
        /// Only this kind.
        #[arg(long, value_parser = parse::<ArtifactKind>)]
        kind: Option<ArtifactKind>,
    },
    /// One artifact.
    Show {
        /// The artifact's ID.
        #[arg(value_parser = parse::<ArtifactId>)]
        artifact: ArtifactId,
    },
    /// An artifact's versions.
    Versions {
        /// The artifact's ID.
        #[arg(value_parser = parse::<ArtifactId>)]
        artifact: ArtifactId,
    },
    /// One version.
    Version {
        /// The version's ID.
        #[arg(value_parser = parse::<VersionId>, value_name = "VERSION_ID")]
        id: VersionId,
    },
    /// Add a validation-criteria version from a JSON file (AO).
    AddCriteria {
        /// The artifact's ID.
        #[arg(long, value_parser = parse::<ArtifactId>)]
        artifact: ArtifactId,
        /// Your version tag (v1, 2024-03 refresh).
        #[arg(long)]
        tag: String,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
        /// The criteria document (JSON).
        file: PathBuf,
    },
    /// Add a dataset version: the signed URL of the sealed dataset (DS).
    AddDataset {
        /// The artifact's ID.
        #[arg(long, value_parser = parse::<ArtifactId>)]
        artifact: ArtifactId,
        /// Your version tag.
        #[arg(long)]
        tag: String,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
        /// The signed URL (`sealroom storage sign`, or an Azure SAS / S3 presigned URL).
        #[arg(long)]
        url: String,
        /// The data-specification version it follows.
        #[arg(long, value_parser = parse::<VersionId>)]
        data_spec: Option<VersionId>,
        /// The attestation-report version that goes with it.
        #[arg(long, value_parser = parse::<VersionId>)]
        attestation: Option<VersionId>,
    },
    /// Upload a file version: a data specification or an attestation report (a document).
    Upload {
        /// The artifact's ID.
        #[arg(long, value_parser = parse::<ArtifactId>)]
        artifact: ArtifactId,
        /// Your version tag.
        #[arg(long)]
        tag: String,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
        /// For attestation reports: the data-specification version attested to.
        #[arg(long, value_parser = parse::<VersionId>)]
        data_spec: Option<VersionId>,
        /// The file.
        file: PathBuf,
    },
    /// Upload a sealed algorithm package directory (made by `sealroom package seal`) as a tar,
    /// streamed (AO).
    UploadPackage {
        /// The algorithm artifact's ID.
        #[arg(long, value_parser = parse::<ArtifactId>)]
        artifact: ArtifactId,
        /// Your version tag.
        #[arg(long)]
        tag: String,
        /// Free text.
        #[arg(long, default_value = "")]
        description: String,
        /// The package directory: Dockerfile and/or run.sh, secrets.json, sealed files.
        dir: PathBuf,
    },
    /// Accept a validation-criteria version (DS).
    Accept {
        /// The version's ID.
        #[arg(value_parser = parse::<VersionId>, value_name = "VERSION_ID")]
        id: VersionId,
    },
    /// Certify that a dataset version holds no unencrypted protected data (DS).
    Certify {
        /// The version's ID.
        #[arg(value_parser = parse::<VersionId>, value_name = "VERSION_ID")]
        id: VersionId,
    },
    /// Download a version's file.
    Download {
        /// The version's ID.
        #[arg(value_parser = parse::<VersionId>, value_name = "VERSION_ID")]
        id: VersionId,
        /// A directory (the server's file name is kept) or a new file path. Default: `.`.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct StorageArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    command: StorageCommand,
}

#[derive(Debug, Subcommand)]
pub enum StorageCommand {
    /// Upload a sealed file, or every file of a sealed directory, to the project's storage (DS).
    Put {
        /// The project's ID.
        #[arg(long, value_parser = parse::<ProjectId>)]
        project: ProjectId,
        /// The storage directory to put it in (`data/v1`): a file goes in under its name, a
        /// directory's files under their relative paths. Default: the top level for a file, the
        /// directory's name for a directory.
        #[arg(long)]
        prefix: Option<String>,
        /// A sealed file or directory (`sealroom encrypt` output).
        path: PathBuf,
    },
    /// The project's stored files (DS).
    List {
        /// The project's ID.
        #[arg(long, value_parser = parse::<ProjectId>)]
        project: ProjectId,
    },
    /// Make a signed read/list URL of a prefix, for a dataset version (DS).
    Sign {
        /// The project's ID.
        #[arg(long, value_parser = parse::<ProjectId>)]
        project: ProjectId,
        /// The prefix (a directory ends with '/').
        #[arg(long)]
        prefix: String,
        /// Hours until the URL expires.
        #[arg(long, default_value_t = 24 * 30)]
        hours: u32,
    },
}

fn artifact_table(items: &[Artifact]) {
    let mut t = Table::new(&["ID", "KIND", "NAME", "VERSIONS", "CREATED"]);
    for a in items {
        t.row(vec![
            a.id.to_string(),
            a.kind.to_string(),
            a.name.to_string(),
            a.latest_version.to_string(),
            a.created_at.to_rfc3339(),
        ]);
    }
    t.print();
}

/// A version's state in a few words, from the detail the server sent.
fn version_status(v: &VersionView) -> String {
    let d = &v.detail;
    let s = |p: &str| {
        d.pointer(p)
            .and_then(|x| x.as_str())
            .unwrap_or("?")
            .to_string()
    };
    match v.kind() {
        Some(ArtifactKind::ValidationCriteria) => {
            match d["acceptances"].as_array().map(Vec::len).unwrap_or(0) {
                0 => "not accepted".into(),
                n => format!("accepted by {n}"),
            }
        }
        Some(ArtifactKind::Dataset) => format!(
            "{}, URL until {}{}",
            if d["certification"].is_null() {
                "not certified"
            } else {
                "certified"
            },
            s("/location/expires_at"),
            d.pointer("/location/status")
                .and_then(|x| x.as_str())
                .map(|st| format!(" ({st})"))
                .unwrap_or_default()
        ),
        Some(ArtifactKind::Algorithm) => d["upload_steps"]
            .as_array()
            .map(|steps| {
                steps
                    .iter()
                    .map(|st| {
                        format!(
                            "{}={}",
                            st["step"].as_str().unwrap_or("?"),
                            st["status"].as_str().unwrap_or("?")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default(),
        _ => "-".into(),
    }
}

fn version_table(items: &[VersionView]) {
    let mut t = Table::new(&["ID", "VERSION", "TAG", "FILE", "STATUS", "CREATED"]);
    for v in items {
        t.row(vec![
            v.id.to_string(),
            v.version.to_string(),
            v.tag.as_str().to_string(),
            v.blob
                .as_ref()
                .map(|b| format!("{} ({} B)", b.file_name, b.size))
                .unwrap_or_else(|| "-".into()),
            version_status(v),
            v.created_at.to_rfc3339(),
        ]);
    }
    t.print();
}

fn file_name_of(path: &Path) -> anyhow::Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| Error::Usage(format!("{} has no usable file name", path.display())).into())
}

/// Uploads one local file with a progress bar.
fn upload_file<T>(
    path: &Path,
    what: &str,
    send: impl FnOnce(Upload<'_>) -> sealroom_client::Result<T>,
) -> anyhow::Result<T> {
    let mut f = fs::File::open(path)
        .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    let len = f
        .metadata()
        .map_err(|e| Error::io(format!("cannot stat {}", path.display()), e))?
        .len();
    let bar = Bar::bytes(len, what);
    let progress = |n: u64| sealroom_envelope::stream::Progress::advance(&bar, n);
    let r = send(Upload::new(&mut f, Some(len)).progress(&progress));
    bar.finish();
    Ok(r?)
}

/// Where a download goes: `output` if a new path, inside it if a directory, else `./name`.
pub(crate) fn download_path(output: Option<PathBuf>, name: &str) -> PathBuf {
    match output {
        None => PathBuf::from(name),
        Some(p) if p.is_dir() => p.join(name),
        Some(p) => p,
    }
}

pub fn artifacts(args: ArtifactsArgs) -> anyhow::Result<ExitCode> {
    let client = args.conn.client()?;
    let conn = &args.conn;
    match args.command {
        ArtifactsCommand::Create {
            project,
            kind,
            name,
            description,
            algorithm_type,
        } => {
            if kind == ArtifactKind::Algorithm && algorithm_type.is_none() {
                return Err(api::Usage(
                    "an algorithm needs --algorithm-type training|validation".into(),
                )
                .into());
            }
            let a = client.create_artifact(
                project,
                &NewArtifact {
                    kind,
                    name: &name,
                    description: &description,
                    algorithm_type,
                },
            )?;
            conn.emit(&a, || println!("created {} {} ({})", a.kind, a.name, a.id))?;
        }
        ArtifactsCommand::List { project, kind } => {
            let items = client.list_artifacts(project, kind)?;
            conn.emit(&items, || artifact_table(&items))?;
        }
        ArtifactsCommand::Show { artifact } => {
            let a = client.artifact(artifact)?;
            conn.emit(&a, || artifact_table(std::slice::from_ref(&a)))?;
        }
        ArtifactsCommand::Versions { artifact } => {
            let items = client.list_versions(artifact)?;
            conn.emit(&items, || version_table(&items))?;
        }
        ArtifactsCommand::Version { id } => {
            let v = client.version(id)?;
            conn.emit(&v, || version_table(std::slice::from_ref(&v)))?;
        }
        ArtifactsCommand::AddCriteria {
            artifact,
            tag,
            description,
            file,
        } => {
            let len = fs::metadata(&file)
                .map_err(|e| Error::io(format!("cannot read {}", file.display()), e))?
                .len();
            if len > 1 << 20 {
                return Err(Error::Usage(format!(
                    "{} is larger than 1 MiB: criteria are a small JSON document",
                    file.display()
                ))
                .into());
            }
            let text = fs::read(&file)
                .map_err(|e| Error::io(format!("cannot read {}", file.display()), e))?;
            // Sent as the file's text: the server keeps it verbatim (and checks it).
            let text = String::from_utf8(text)
                .map_err(|_| Error::Usage(format!("{} is not UTF-8 text", file.display())))?;
            let criteria = serde_json::Value::String(text);
            let v = client.add_json_version(
                artifact,
                &NewJsonVersion::ValidationCriteria {
                    tag: &tag,
                    description: &description,
                    criteria,
                },
            )?;
            conn.emit(&v, || {
                println!(
                    "added criteria version {} ({}) {}",
                    v.version,
                    v.tag.as_str(),
                    v.id
                )
            })?;
        }
        ArtifactsCommand::AddDataset {
            artifact,
            tag,
            description,
            url,
            data_spec,
            attestation,
        } => {
            let v = client.add_json_version(
                artifact,
                &NewJsonVersion::Dataset {
                    tag: &tag,
                    description: &description,
                    url: &url,
                    data_specification_version: data_spec,
                    attestation_report_version: attestation,
                },
            )?;
            conn.emit(&v, || {
                println!(
                    "added dataset version {} ({}) {}",
                    v.version,
                    v.tag.as_str(),
                    v.id
                )
            })?;
        }
        ArtifactsCommand::Upload {
            artifact,
            tag,
            description,
            data_spec,
            file,
        } => {
            let file_name = file_name_of(&file)?;
            let v = upload_file(&file, "uploading", |u| {
                client.upload_version(
                    artifact,
                    &FileVersion {
                        tag: &tag,
                        description: &description,
                        file_name: &file_name,
                        data_specification_version: data_spec,
                    },
                    u,
                )
            })?;
            conn.emit(&v, || {
                println!(
                    "uploaded version {} ({}) {}",
                    v.version,
                    v.tag.as_str(),
                    v.id
                )
            })?;
        }
        ArtifactsCommand::UploadPackage {
            artifact,
            tag,
            description,
            dir,
        } => {
            let v = upload_package(&client, artifact, &tag, &description, &dir)?;
            conn.emit(&v, || {
                println!(
                    "uploaded package version {} ({}) {}",
                    v.version,
                    v.tag.as_str(),
                    v.id
                );
                for st in v.detail["upload_steps"].as_array().into_iter().flatten() {
                    println!(
                        "  {:<26} {}{}",
                        st["step"].as_str().unwrap_or("?"),
                        st["status"].as_str().unwrap_or("?"),
                        st["message"]
                            .as_str()
                            .map(|m| format!(": {m}"))
                            .unwrap_or_default()
                    );
                }
            })?;
        }
        ArtifactsCommand::Accept { id: version } => {
            let v = client.accept_version(version)?;
            let out = if v.is_null() {
                json!({"accepted": version})
            } else {
                v
            };
            conn.emit(&out, || println!("accepted criteria version {version}"))?;
        }
        ArtifactsCommand::Certify { id: version } => {
            let v = client.certify_version(version)?;
            let out = if v.is_null() {
                json!({"certified": version})
            } else {
                v
            };
            conn.emit(&out, || println!("certified dataset version {version}"))?;
        }
        ArtifactsCommand::Download {
            id: version,
            output,
        } => {
            let meta = client.version(version)?;
            let name = meta
                .blob
                .as_ref()
                .and_then(|b| {
                    sealroom_client::attachment_name(&format!("filename=\"{}\"", b.file_name))
                })
                .unwrap_or_else(|| match meta.kind() {
                    // Criteria have no stored file: their content is the JSON document.
                    Some(ArtifactKind::ValidationCriteria) => format!("criteria-{version}.json"),
                    _ => format!("{version}.bin"),
                });
            let size = meta
                .blob
                .as_ref()
                .map(|b| b.size.max(0) as u64)
                .unwrap_or(0);
            let path = download_path(output, &name);
            let bytes = download_to(&path, size, |out, progress| {
                client.download_version(version, out, progress)
            })?;
            conn.emit(&json!({"path": path, "bytes": bytes}), || {
                println!("wrote {} ({bytes} bytes)", path.display())
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Streams a download into a new file with a progress bar; removes the file on failure.
pub(crate) fn download_to(
    path: &Path,
    size: u64,
    get: impl FnOnce(
        &mut dyn std::io::Write,
        sealroom_client::ProgressFn<'_>,
    ) -> sealroom_client::Result<sealroom_client::Download>,
) -> anyhow::Result<u64> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| super::projects::create_error(path, e))?;
    let mut out = BufWriter::new(file);
    let bar = Bar::bytes(size, "downloading");
    let progress = |n: u64| sealroom_envelope::stream::Progress::advance(&bar, n);
    let r = get(&mut out, &progress);
    bar.finish();
    match r {
        Ok(d) => Ok(d.bytes),
        Err(e) => {
            drop(out);
            let _ = fs::remove_file(path);
            Err(e.into())
        }
    }
}

/// Checks the package, then streams its tar through a pipe: a thread writes the tar while the
/// upload reads it, so nothing is staged on disk or held in memory.
fn upload_package(
    client: &sealroom_client::Client,
    artifact: ArtifactId,
    tag: &str,
    description: &str,
    dir: &Path,
) -> anyhow::Result<VersionView> {
    let files = package::check_package(dir)?;
    let len = package::tar_len(dir, &files)?;
    let name = format!(
        "{}.tar",
        file_name_of(&dir.canonicalize().unwrap_or(dir.to_path_buf()))?
    );
    let (mut reader, writer) = std::io::pipe().context("cannot make a pipe")?;
    let root = dir.to_path_buf();
    let list = files.clone();
    let producer =
        std::thread::spawn(move || package::write_tar(&root, &list, BufWriter::new(writer)));
    let total = len.unwrap_or_else(|| {
        files
            .iter()
            .map(|f| fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0))
            .sum()
    });
    let bar = Bar::bytes(total, "uploading package");
    let progress = |n: u64| sealroom_envelope::stream::Progress::advance(&bar, n);
    let result = client.upload_version(
        artifact,
        &FileVersion {
            tag,
            description,
            file_name: &name,
            data_specification_version: None,
        },
        Upload::new(&mut reader, len).progress(&progress),
    );
    bar.finish();
    drop(reader);
    let produced = producer
        .join()
        .map_err(|_| anyhow::anyhow!("the tar writer panicked"))?;
    match (result, produced) {
        (Ok(v), _) => Ok(v),
        // A local read failure is the real cause of a broken upload.
        (Err(_), Err(local)) => Err(local),
        (Err(e), Ok(())) => Err(e.into()),
    }
}

pub fn storage(args: StorageArgs) -> anyhow::Result<ExitCode> {
    let client = args.conn.client()?;
    let conn = &args.conn;
    match args.command {
        StorageCommand::Put {
            project,
            prefix,
            path,
        } => {
            // The prefix is a directory of the storage: a file goes into it under its own
            // name, a directory's files under their relative paths. Without a prefix, the
            // file's or directory's name is the top level.
            let prefix = prefix
                .map(|p| p.trim_matches('/').to_string())
                .filter(|p| !p.is_empty());
            let uploads: Vec<(PathBuf, String)> = if path.is_dir() {
                let base = match prefix {
                    Some(p) => p,
                    None => file_name_of(&path)?,
                };
                package::walk_files(&path)?
                    .into_iter()
                    .map(|f| (path.join(&f), format!("{base}/{f}")))
                    .collect()
            } else {
                let name = file_name_of(&path)?;
                let key = match prefix {
                    Some(p) => format!("{p}/{name}"),
                    None => name,
                };
                vec![(path.clone(), key)]
            };
            let mut stored = Vec::new();
            for (local, key) in &uploads {
                let r = upload_file(local, key, |u| client.put_storage(project, key, u))?;
                if !conn.json {
                    println!("{}  {} B  {}", r.key, r.size, r.sha256);
                }
                stored.push(r);
            }
            if conn.json {
                println!("{}", serde_json::to_string(&stored)?);
            }
        }
        StorageCommand::List { project } => {
            let items = client.list_storage(project)?;
            conn.emit(&items, || {
                let mut t = Table::new(&["PATH", "SIZE"]);
                for i in &items {
                    t.row(vec![i.path.clone(), i.size.to_string()]);
                }
                t.print();
            })?;
        }
        StorageCommand::Sign {
            project,
            prefix,
            hours,
        } => {
            let s = client.sign_storage(project, &prefix, hours)?;
            conn.emit(&s, || {
                eprintln!("expires {}", s.expires_at.to_rfc3339());
                println!("{}", s.url);
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
    struct A {
        #[command(subcommand)]
        c: ArtifactsCommand,
    }

    #[derive(Debug, Parser)]
    struct S {
        #[command(subcommand)]
        c: StorageCommand,
    }

    const ID: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

    #[test]
    fn artifact_arguments() {
        let a = A::try_parse_from([
            "a",
            "create",
            "--project",
            ID,
            "--kind",
            "algorithm",
            "--name",
            "Model",
            "--algorithm-type",
            "validation",
        ])
        .unwrap();
        assert!(matches!(
            a.c,
            ArtifactsCommand::Create {
                kind: ArtifactKind::Algorithm,
                algorithm_type: Some(AlgorithmType::Validation),
                ..
            }
        ));
        assert!(A::try_parse_from([
            "a",
            "create",
            "--project",
            ID,
            "--kind",
            "model",
            "--name",
            "M"
        ])
        .is_err());
        assert!(A::try_parse_from([
            "a",
            "upload-package",
            "--artifact",
            ID,
            "--tag",
            "v1",
            "pkg"
        ])
        .is_ok());
        assert!(A::try_parse_from(["a", "upload-package", "--artifact", ID, "pkg"]).is_err());
        assert!(A::try_parse_from([
            "a",
            "add-dataset",
            "--artifact",
            ID,
            "--tag",
            "v1",
            "--url",
            "https://x/y?sig=1",
            "--data-spec",
            ID
        ])
        .is_ok());
        assert!(A::try_parse_from(["a", "accept", "nope"]).is_err());
        let s = S::try_parse_from(["s", "sign", "--project", ID, "--prefix", "data/"]).unwrap();
        assert!(matches!(s.c, StorageCommand::Sign { hours: 720, .. }));
    }

    #[test]
    fn download_paths() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(download_path(None, "a.pdf"), PathBuf::from("a.pdf"));
        assert_eq!(
            download_path(Some(d.path().to_path_buf()), "a.pdf"),
            d.path().join("a.pdf")
        );
        assert_eq!(
            download_path(Some(d.path().join("b.pdf")), "a.pdf"),
            d.path().join("b.pdf")
        );
    }
}
