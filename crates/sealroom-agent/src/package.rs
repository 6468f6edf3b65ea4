//! An algorithm package as EscrowAI defines it (manual §7.3.5): a folder with a `Dockerfile`, an
//! entry point (e.g. `run.sh`) and the algorithm's code; files its owner sealed are listed in the
//! plaintext `secrets` manifest.
//!
//! The bwrap runner has no image to build, so it runs the entry point with the enclave's own
//! read-only system (`/usr`): it takes the `ENTRYPOINT` (and `CMD`, `WORKDIR`) of the Dockerfile,
//! or `run.sh` when there is no Dockerfile. The package is mounted read-only at `/app`.

use std::path::{Path, PathBuf};

/// Where the package appears inside the sandbox.
pub const APP_DIR: &str = "/app";
/// Largest Dockerfile read.
const MAX_DOCKERFILE: u64 = 256 * 1024;

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
