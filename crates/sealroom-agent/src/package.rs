//! An algorithm package as EscrowAI defines it (manual §7.3.5): a folder with a `Dockerfile`, an
//! entry point (e.g. `run.sh`) and the algorithm's code; files its owner sealed are listed in the
//! plaintext `secrets` manifest.
//!
//! The bwrap runner has no image to build, so it runs the entry point with the enclave's own
//! read-only system (`/usr`): it takes the `ENTRYPOINT` (and `CMD`, `WORKDIR`) of the Dockerfile,
//! or `run.sh` when there is no Dockerfile. The package is mounted read-only at `/app`.
//!
//! The container runner builds the Dockerfile at Runtime Build from [`build_context`]: the
//! package's plaintext files only. Files named in the `secrets` manifest are decrypted for the run
//! and must never land in an image layer on disk, so they stay out of the context; the run sees
//! them at `/app`, mounted from memory-backed storage.

use std::path::{Path, PathBuf};

/// Where the package appears inside the sandbox.
pub const APP_DIR: &str = "/app";
/// Largest Dockerfile read.
const MAX_DOCKERFILE: u64 = 256 * 1024;
/// The plaintext manifest of the files the algorithm owner sealed.
pub const SECRETS_MANIFEST: &str = "secrets";
/// The same manifest in the server's JSON form, `{"files": ["path", ...]}`.
pub const SECRETS_MANIFEST_JSON: &str = "secrets.json";
/// Largest `secrets` manifest read.
const MAX_SECRETS_MANIFEST: u64 = 1024 * 1024;
/// Largest build context (the tar of the plaintext files) sent to the container engine. Weights
/// and data belong in sealed files, mounted at run time, not in the image.
pub const MAX_BUILD_CONTEXT: u64 = 256 * 1024 * 1024;
/// Most entries (files and directories) in a build context.
const MAX_BUILD_ENTRIES: usize = 100_000;

/// Errors reading a package.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// Neither a Dockerfile with an ENTRYPOINT/CMD nor a `run.sh`.
    #[error(
        "{dir}: no entry point: the package needs a Dockerfile with ENTRYPOINT or CMD, or a run.sh"
    )]
    NoEntrypoint { dir: String },
    /// The Dockerfile cannot be used.
    #[error("{path}: {reason}")]
    Dockerfile { path: String, reason: String },
    /// The build context would be larger than [`MAX_BUILD_CONTEXT`] or hold too many files.
    #[error("{dir}: the build context is too large ({what}); put large files in sealed files, which are mounted at run time")]
    ContextTooLarge { dir: String, what: String },
    /// The package directory cannot be read.
    #[error("cannot read the package {dir}: {source}")]
    Io {
        dir: String,
        #[source]
        source: std::io::Error,
    },
}

/// How to start a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entrypoint {
    /// The program (a path inside the sandbox) and its arguments.
    pub argv: Vec<String>,
    /// The working directory inside the sandbox.
    pub workdir: PathBuf,
}

/// Reads a package's entry point.
pub fn entrypoint(dir: &Path) -> Result<Entrypoint, PackageError> {
    let docker = dir.join("Dockerfile");
    if docker.is_file() {
        if let Some(ep) = from_dockerfile(&docker)? {
            return Ok(ep);
        }
    }
    if dir.join("run.sh").is_file() {
        return Ok(Entrypoint {
            argv: vec!["/bin/sh".into(), format!("{APP_DIR}/run.sh")],
            workdir: PathBuf::from(APP_DIR),
        });
    }
    if !dir.is_dir() {
        return Err(PackageError::Io {
            dir: dir.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
        });
    }
    Err(PackageError::NoEntrypoint {
        dir: dir.display().to_string(),
    })
}

/// Parses a Dockerfile's `WORKDIR`, `ENTRYPOINT` and `CMD` (exec or shell form).
fn from_dockerfile(path: &Path) -> Result<Option<Entrypoint>, PackageError> {
    let bad = |reason: String| PackageError::Dockerfile {
        path: path.display().to_string(),
        reason,
    };
    let len = std::fs::metadata(path)
        .map_err(|e| bad(e.to_string()))?
        .len();
    if len > MAX_DOCKERFILE {
        return Err(bad(format!("{len} bytes is too large for a Dockerfile")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    // Join continuation lines, drop comments.
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.starts_with('#') || trimmed.is_empty()) {
            continue;
        }
        if let Some(stripped) = trimmed.strip_suffix('\\') {
            current.push_str(stripped);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            logical.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        logical.push(current);
    }
    let mut workdir = PathBuf::from(APP_DIR);
    let mut entry: Option<Vec<String>> = None;
    let mut cmd: Option<Vec<String>> = None;
    for line in &logical {
        let (instr, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        match instr.to_ascii_uppercase().as_str() {
            "WORKDIR" => {
                let w = PathBuf::from(rest);
                workdir = if w.is_absolute() { w } else { workdir.join(w) };
            }
            "ENTRYPOINT" => entry = Some(command_form(rest).map_err(bad)?),
            "CMD" => cmd = Some(command_form(rest).map_err(bad)?),
            _ => {}
        }
    }
    let mut argv = entry.unwrap_or_default();
    argv.extend(cmd.unwrap_or_default());
    if argv.is_empty() {
        return Ok(None);
    }
    // The package is at /app whatever WORKDIR says (COPY . . puts it there in the seed's
    // example); relative programs are found in the working directory, as users expect.
    if !argv[0].starts_with('/')
        && (argv[0].contains('/') || argv[0].ends_with(".sh") || argv[0].ends_with(".py"))
    {
        argv[0] = format!("{}/{}", workdir.display(), argv[0].trim_start_matches("./"));
    }
    if argv[0].ends_with(".sh") {
        argv.insert(0, "/bin/sh".into());
    } else if argv[0].ends_with(".py") {
        argv.insert(0, "/usr/bin/python3".into());
    }
    Ok(Some(Entrypoint { argv, workdir }))
}

/// The paths (relative, `/`-separated) the package's secrets manifests name: `secrets` (one per
/// line, `#` comments and blank lines ignored) and `secrets.json` (`{"files": [...]}`), both
/// where both exist; a leading `./` or `/` dropped; a directory stands for everything under it.
/// No manifest: nothing is secret.
pub fn secret_paths(dir: &Path) -> Result<Vec<String>, PackageError> {
    let clean = |l: &str| {
        l.trim()
            .trim_start_matches("./")
            .trim_start_matches('/')
            .trim_end_matches('/')
            .to_owned()
    };
    let mut paths: Vec<String> = Vec::new();
    if let Some(text) = read_manifest(dir, SECRETS_MANIFEST)? {
        paths.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(clean),
        );
    }
    if let Some(text) = read_manifest(dir, SECRETS_MANIFEST_JSON)? {
        #[derive(serde::Deserialize)]
        struct Files {
            files: Vec<String>,
        }
        let files: Files = serde_json::from_str(&text).map_err(|e| PackageError::Dockerfile {
            path: dir.join(SECRETS_MANIFEST_JSON).display().to_string(),
            reason: format!("not {{\"files\": [\"relative/path\", ...]}}: {e}"),
        })?;
        paths.extend(files.files.iter().map(|f| clean(f)));
    }
    // Each path once, in the order first named.
    let mut seen = std::collections::HashSet::new();
    paths.retain(|p| !p.is_empty() && seen.insert(p.clone()));
    Ok(paths)
}

/// A manifest's text, `None` when it does not exist; bounded, never through a link.
fn read_manifest(dir: &Path, name: &str) -> Result<Option<String>, PackageError> {
    let path = dir.join(name);
    let io = |source| PackageError::Io {
        dir: dir.display().to_string(),
        source,
    };
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    if !meta.is_file() || meta.len() > MAX_SECRETS_MANIFEST {
        return Err(PackageError::Dockerfile {
            path: path.display().to_string(),
            reason: format!(
                "the secrets manifest must be a regular file of at most {MAX_SECRETS_MANIFEST} bytes"
            ),
        });
    }
    std::fs::read_to_string(&path).map(Some).map_err(io)
}

/// The Runtime Build context: a tar of the package's regular files and directories, without the
/// files its `secrets` manifest names, without symbolic links or special files (a link could
/// point anywhere on the host), owned by root, with fixed times so the same package gives the
/// same bytes. At most [`MAX_BUILD_CONTEXT`] bytes.
pub fn build_context(dir: &Path) -> Result<Vec<u8>, PackageError> {
    let secrets = secret_paths(dir)?;
    let io = |source| PackageError::Io {
        dir: dir.display().to_string(),
        source,
    };
    let mut builder = tar::Builder::new(Vec::new());
    let mut entries = 0usize;
    let mut total = 0u64;
    // Depth-first, sorted: reproducible.
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let mut children: Vec<_> = std::fs::read_dir(dir.join(&rel))
            .map_err(io)?
            .collect::<Result<_, _>>()
            .map_err(io)?;
        children.sort_by_key(|e| e.file_name());
        for child in children.into_iter().rev() {
            let name = rel.join(child.file_name());
            let slash = name.to_string_lossy();
            if secrets
                .iter()
                .any(|s| slash == s.as_str() || slash.starts_with(&format!("{s}/")))
            {
                continue;
            }
            let meta = std::fs::symlink_metadata(child.path()).map_err(io)?;
            entries += 1;
            if entries > MAX_BUILD_ENTRIES {
                return Err(PackageError::ContextTooLarge {
                    dir: dir.display().to_string(),
                    what: format!("more than {MAX_BUILD_ENTRIES} files"),
                });
            }
            let mut header = tar::Header::new_gnu();
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            use std::os::unix::fs::PermissionsExt;
            let exec = meta.permissions().mode() & 0o111 != 0;
            if meta.is_dir() {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder
                    .append_data(&mut header, &name, std::io::empty())
                    .map_err(io)?;
                stack.push(name);
            } else if meta.is_file() {
                total += meta.len() + 512;
                if total > MAX_BUILD_CONTEXT {
                    return Err(PackageError::ContextTooLarge {
                        dir: dir.display().to_string(),
                        what: format!("over {} MiB", MAX_BUILD_CONTEXT >> 20),
                    });
                }
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(if exec { 0o755 } else { 0o644 });
                header.set_size(meta.len());
                let file = std::fs::File::open(child.path()).map_err(io)?;
                // A file that grows while it is read is cut at its size: `append_data` copies
                // exactly `size` bytes.
                builder
                    .append_data(&mut header, &name, std::io::Read::take(file, meta.len()))
                    .map_err(io)?;
            }
        }
    }
    builder.into_inner().map_err(io)
}

/// Exec form (`["a", "b"]`) or shell form (`a b` → `/bin/sh -c "a b"`).
fn command_form(rest: &str) -> Result<Vec<String>, String> {
    if rest.starts_with('[') {
        serde_json::from_str::<Vec<String>>(rest)
            .map_err(|e| format!("ENTRYPOINT/CMD is not a JSON array of strings: {e}"))
    } else if rest.is_empty() {
        Ok(Vec::new())
    } else {
        Ok(vec!["/bin/sh".into(), "-c".into(), rest.to_owned()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_dockerfile(text: &str) -> Entrypoint {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("Dockerfile"), text).unwrap();
        entrypoint(d.path()).unwrap()
    }

    #[test]
    fn the_seed_example() {
        let ep = with_dockerfile(
            "FROM python:3.9.16-slim\nWORKDIR /app\nCOPY . .\n# comment\nRUN chmod +x run.sh\nENTRYPOINT [\"run.sh\"]\n",
        );
        assert_eq!(ep.argv, vec!["/bin/sh", "/app/run.sh"]);
        assert_eq!(ep.workdir, PathBuf::from("/app"));
    }

    #[test]
    fn exec_and_shell_forms() {
        let ep = with_dockerfile(
            "WORKDIR /app\nENTRYPOINT [\"python3\", \"main.py\"]\nCMD [\"--fast\"]\n",
        );
        assert_eq!(ep.argv, vec!["python3", "main.py", "--fast"]);
        let ep = with_dockerfile("CMD python3 \\\n  main.py\n");
        assert_eq!(ep.argv, vec!["/bin/sh", "-c", "python3  main.py"]);
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("Dockerfile"), "ENTRYPOINT [oops\n").unwrap();
        assert!(matches!(
            entrypoint(d.path()),
            Err(PackageError::Dockerfile { .. })
        ));
    }

    #[test]
    fn the_build_context_leaves_out_secrets_and_links() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::write(p.join("Dockerfile"), "FROM x\n").unwrap();
        std::fs::write(p.join("secrets"), "# sealed\n./model.bin\nweights/\n").unwrap();
        std::fs::write(p.join("secrets.json"), r#"{"files": ["src/key.pem"]}"#).unwrap();
        std::fs::write(p.join("model.bin"), "decrypted weights").unwrap();
        std::fs::create_dir_all(p.join("weights/deep")).unwrap();
        std::fs::write(p.join("weights/deep/w.pt"), "w").unwrap();
        std::fs::create_dir(p.join("src")).unwrap();
        std::fs::write(p.join("src/main.py"), "print(1)").unwrap();
        std::fs::write(p.join("src/key.pem"), "decrypted key").unwrap();
        std::os::unix::fs::symlink("/etc/shadow", p.join("src/shadow")).unwrap();
        let tar_bytes = build_context(p).unwrap();
        assert_eq!(tar_bytes, build_context(p).unwrap(), "reproducible");
        let mut names: Vec<String> = tar::Archive::new(&tar_bytes[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                "Dockerfile",
                "secrets",
                "secrets.json",
                "src",
                "src/main.py"
            ]
        );
        std::fs::write(p.join("secrets.json"), "[]").unwrap();
        assert!(matches!(
            build_context(p),
            Err(PackageError::Dockerfile { .. })
        ));
    }

    #[test]
    fn run_sh_without_dockerfile_and_nothing() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            entrypoint(d.path()),
            Err(PackageError::NoEntrypoint { .. })
        ));
        std::fs::write(d.path().join("run.sh"), "echo hi").unwrap();
        assert_eq!(
            entrypoint(d.path()).unwrap().argv,
            vec!["/bin/sh", "/app/run.sh"]
        );
    }
}
