//! Algorithm packages: `sealroom package seal` (local) seals the files its owner chooses and
//! writes the plaintext `secrets.json` manifest; [`PackageTar`] streams a package directory as
//! the tar that `sealroom artifacts upload-package` sends.
//!
//! A package directory holds a plaintext `Dockerfile` and/or `run.sh`, the algorithm's files, and
//! `secrets.json` = `{"files": ["relative/path", ...]}` listing the files that are sealed (with
//! the AO's CEK, `docs/format.md`); every other file is plaintext.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use sealroom_envelope::{dir, Cek, Error};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::progress::Bar;

/// The manifest's file name.
pub const SECRETS_MANIFEST: &str = "secrets.json";
/// Files that stay plaintext whatever the globs say.
const ALWAYS_PLAIN: &[&str] = &["Dockerfile", "run.sh", SECRETS_MANIFEST];
/// Largest manifest read.
const MAX_MANIFEST: u64 = 4 << 20;
/// Most files in a package.
const MAX_FILES: usize = 100_000;

#[derive(Debug, Subcommand)]
pub enum PackageCommand {
    /// Copy a plaintext package directory, sealing the files that match --secret, and write the
    /// secrets.json manifest that lists them.
    Seal(SealArgs),
}

#[derive(Debug, Args)]
pub struct SealArgs {
    /// The plaintext package directory (Dockerfile and/or run.sh, code, weights).
    input: PathBuf,
    /// The AO's CEK file.
    #[arg(long)]
    cek: PathBuf,
    /// The sealed package directory to create (must not exist).
    #[arg(long)]
    out: PathBuf,
    /// A glob of files to seal, relative to the package (`*` within a name, `**` across
    /// directories, `?` one character); repeat for several. Example: --secret 'model/**'
    #[arg(long = "secret", required = true, value_name = "GLOB")]
    secrets: Vec<String>,
    /// Print a JSON summary.
    #[arg(long)]
    json: bool,
}

/// The plaintext manifest of sealed files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretsManifest {
    /// Package-relative paths with `/` separators, sorted.
    pub files: Vec<String>,
}

/// Matches `path` (with `/` separators) against a glob: `*` any run of characters but `/`,
/// `**` any run including `/` (`**/` also matches nothing), `?` one character but `/`.
pub fn glob_match(glob: &str, path: &str) -> bool {
    fn go(g: &[char], p: &[char]) -> bool {
        match g.first() {
            None => p.is_empty(),
            Some('*') if g.get(1) == Some(&'*') => {
                let rest = &g[2..];
                // `**/` may match zero directories.
                if rest.first() == Some(&'/') && go(&rest[1..], p) {
                    return true;
                }
                (0..=p.len()).any(|i| go(rest, &p[i..]))
            }
            Some('*') => {
                let rest = &g[1..];
                for i in 0..=p.len() {
                    if go(rest, &p[i..]) {
                        return true;
                    }
                    if p.get(i) == Some(&'/') {
                        break;
                    }
                }
                false
            }
            Some('?') => p.first().is_some_and(|c| *c != '/') && go(&g[1..], &p[1..]),
            Some(c) => p.first() == Some(c) && go(&g[1..], &p[1..]),
        }
    }
    let g: Vec<char> = glob.trim_start_matches("./").chars().collect();
    let p: Vec<char> = path.chars().collect();
    go(&g, &p)
}

/// Every regular file under `root`, as sorted `/`-separated relative paths. Symbolic links and
/// special files are refused (a package is copied into the enclave as it is).
pub fn walk_files(root: &Path) -> anyhow::Result<Vec<String>> {
    fn rec(root: &Path, rel: &str, out: &mut Vec<String>) -> anyhow::Result<()> {
        let here = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(rel)
        };
        let mut entries: Vec<_> = fs::read_dir(&here)
            .with_context(|| format!("cannot read the directory {}", here.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("cannot read the directory {}", here.display()))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            let name = name
                .to_str()
                .with_context(|| format!("{}: a file name that is not UTF-8", here.display()))?;
            let child = if rel.is_empty() {
                name.to_string()
            } else {
                format!("{rel}/{name}")
            };
            let ft = e
                .file_type()
                .with_context(|| format!("cannot stat {}", e.path().display()))?;
            if ft.is_dir() {
                rec(root, &child, out)?;
            } else if ft.is_file() {
                out.push(child);
                if out.len() > MAX_FILES {
                    anyhow::bail!("{} holds more than {MAX_FILES} files", root.display());
                }
            } else {
                anyhow::bail!(Error::Usage(format!(
                    "{}: only regular files and directories may be in a package (no symbolic links)",
                    e.path().display()
                )));
            }
        }
        Ok(())
    }
    if !root.is_dir() {
        anyhow::bail!(Error::Usage(format!(
            "{} is not a directory",
            root.display()
        )));
    }
    let mut out = Vec::new();
    rec(root, "", &mut out)?;
    Ok(out)
}

pub fn run(command: PackageCommand) -> anyhow::Result<ExitCode> {
    match command {
        PackageCommand::Seal(a) => seal(a),
    }
}

fn seal(args: SealArgs) -> anyhow::Result<ExitCode> {
    let cek = Cek::read_file(&args.cek)?;
    if args.out.exists() {
        anyhow::bail!(Error::Usage(format!(
            "{} already exists",
            args.out.display()
        )));
    }
    let files = walk_files(&args.input)?;
    if files.iter().any(|f| f == SECRETS_MANIFEST) {
        anyhow::bail!(Error::Usage(format!(
            "{} already has a {SECRETS_MANIFEST}: it looks sealed already",
            args.input.display()
        )));
    }
    if !files.iter().any(|f| f == "Dockerfile" || f == "run.sh") {
        anyhow::bail!(Error::Usage(format!(
            "{} has neither a Dockerfile nor a run.sh: the enclave could not start it",
            args.input.display()
        )));
    }
    let sealed: Vec<String> = files
        .iter()
        .filter(|f| !ALWAYS_PLAIN.contains(&f.as_str()))
        .filter(|f| args.secrets.iter().any(|g| glob_match(g, f)))
        .cloned()
        .collect();
    if sealed.is_empty() {
        anyhow::bail!(Error::Usage(format!(
            "no file of {} matches {}",
            args.input.display(),
            args.secrets.join(", ")
        )));
    }
    // Build beside the destination, rename only when complete.
    let parent = args
        .out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".sealroom-package-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot create a directory in {}", parent.display()))?;
    let total: u64 = sealed
        .iter()
        .map(|f| {
            fs::metadata(args.input.join(f))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum();
    let bar = Bar::bytes(total, "sealing");
    let mut plain_count = 0usize;
    for f in &files {
        let src = args.input.join(f);
        let dest = tmp.path().join(f);
        if let Some(p) = dest.parent() {
            fs::create_dir_all(p).with_context(|| format!("cannot create {}", p.display()))?;
        }
        if sealed.contains(f) {
            dir::seal_file(&src, &dest, &cek, false, &bar)?;
        } else {
            fs::copy(&src, &dest).map_err(|e| {
                Error::io(
                    format!("cannot copy {} to {}", src.display(), dest.display()),
                    e,
                )
            })?;
            plain_count += 1;
        }
    }
    let manifest = SecretsManifest {
        files: sealed.clone(),
    };
    let mut text = serde_json::to_vec_pretty(&manifest)?;
    text.push(b'\n');
    fs::write(tmp.path().join(SECRETS_MANIFEST), text)
        .map_err(|e| Error::io("cannot write secrets.json", e))?;
    bar.finish();
    let staged = tmp.keep();
    fs::rename(&staged, &args.out).map_err(|e| {
        let _ = fs::remove_dir_all(&staged);
        Error::io(format!("cannot create {}", args.out.display()), e)
    })?;
    if args.json {
        println!(
            "{}",
            json!({"output": args.out, "sealed": sealed, "plaintext_files": plain_count, "key_id": cek.key_id().to_string()})
        );
    } else {
        println!(
            "wrote {}: {} sealed file(s) listed in {SECRETS_MANIFEST}, {plain_count} plaintext (key id {})",
            args.out.display(),
            sealed.len(),
            cek.key_id()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks a package directory before upload: an entry point, a readable `secrets.json` whose
/// files exist and are sealed. Returns its files.
pub fn check_package(root: &Path) -> anyhow::Result<Vec<String>> {
    let files = walk_files(root)?;
    if !files.iter().any(|f| f == "Dockerfile" || f == "run.sh") {
        anyhow::bail!(Error::Usage(format!(
            "{} has neither a Dockerfile nor a run.sh",
            root.display()
        )));
    }
    let mpath = root.join(SECRETS_MANIFEST);
    let len = fs::metadata(&mpath)
        .map_err(|_| {
            Error::Usage(format!(
                "{} has no {SECRETS_MANIFEST}: seal it first with `sealroom package seal`",
                root.display()
            ))
        })?
        .len();
    if len > MAX_MANIFEST {
        anyhow::bail!(Error::Usage(format!("{} is too large", mpath.display())));
    }
    let manifest: SecretsManifest = serde_json::from_slice(
        &fs::read(&mpath).with_context(|| format!("cannot read {}", mpath.display()))?,
    )
    .map_err(|e| {
        Error::Usage(format!(
            "{} is not a secrets manifest: {e}",
            mpath.display()
        ))
    })?;
    for f in &manifest.files {
        if !files.contains(f) {
            anyhow::bail!(Error::Usage(format!(
                "{SECRETS_MANIFEST} lists {f}, which is not in {}",
                root.display()
            )));
        }
        let mut magic = [0u8; 8];
        let ok = fs::File::open(root.join(f))
            .and_then(|mut r| r.read_exact(&mut magic))
            .is_ok()
            && magic == sealroom_envelope::header::MAGIC;
        if !ok {
            anyhow::bail!(Error::NotSealed {
                reason: format!(
                    "{} is listed in {SECRETS_MANIFEST} but is not a sealed file",
                    root.join(f).display()
                ),
            });
        }
    }
    Ok(files)
}

/// The exact size of the tar [`write_tar`] makes of `files` (ustar headers, no extensions),
/// or `None` when a path is too long for a plain header.
pub fn tar_len(root: &Path, files: &[String]) -> anyhow::Result<Option<u64>> {
    let mut total = 1024u64; // two zero blocks end the archive
    for f in files {
        if f.len() > 99 {
            return Ok(None);
        }
        let size = fs::metadata(root.join(f))
            .with_context(|| format!("cannot stat {}", root.join(f).display()))?
            .len();
        total += 512 + size.div_ceil(512) * 512;
    }
    Ok(Some(total))
}

/// Writes the package as a tar: regular files only, sorted, modes kept (0755 or 0644), no
/// owners or times (the same directory gives the same bytes).
pub fn write_tar(root: &Path, files: &[String], out: impl Write) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut b = tar::Builder::new(out);
    b.mode(tar::HeaderMode::Deterministic);
    for f in files {
        let path = root.join(f);
        let mut file =
            fs::File::open(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let meta = file
            .metadata()
            .with_context(|| format!("cannot stat {}", path.display()))?;
        let mut h = tar::Header::new_ustar();
        h.set_size(meta.len());
        h.set_mode(if meta.permissions().mode() & 0o111 != 0 {
            0o755
        } else {
            0o644
        });
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mtime(0);
        b.append_data(&mut h, f, &mut file)
            .with_context(|| format!("cannot add {} to the package", path.display()))?;
    }
    b.into_inner()?.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*.py", "train.py"));
        assert!(!glob_match("*.py", "src/train.py"));
        assert!(glob_match("**/*.py", "train.py"));
        assert!(glob_match("**/*.py", "src/a/train.py"));
        assert!(glob_match("model/**", "model/weights/w.bin"));
        assert!(glob_match("model/*.bin", "model/w.bin"));
        assert!(!glob_match("model/*.bin", "model/x/w.bin"));
        assert!(glob_match("./w?.bin", "w1.bin"));
        assert!(!glob_match("w?.bin", "w12.bin"));
        assert!(glob_match("src/train.py", "src/train.py"));
    }

    #[test]
    fn tar_length_is_exact_and_tar_is_deterministic() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("model")).unwrap();
        fs::write(d.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        fs::write(d.path().join("model/w.bin"), vec![7u8; 1500]).unwrap();
        fs::write(d.path().join("empty"), b"").unwrap();
        let files = walk_files(d.path()).unwrap();
        assert_eq!(files, vec!["Dockerfile", "empty", "model/w.bin"]);
        let mut a = Vec::new();
        write_tar(d.path(), &files, &mut a).unwrap();
        assert_eq!(tar_len(d.path(), &files).unwrap(), Some(a.len() as u64));
        let mut b = Vec::new();
        write_tar(d.path(), &files, &mut b).unwrap();
        assert_eq!(a, b);
        let mut ar = tar::Archive::new(&a[..]);
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, files);
        let long = vec!["a".repeat(120)];
        assert_eq!(tar_len(d.path(), &long).unwrap(), None);
    }

    #[test]
    fn symlinks_are_refused() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("run.sh"), "echo hi\n").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.path().join("link")).unwrap();
        assert!(walk_files(d.path()).is_err());
    }
}
