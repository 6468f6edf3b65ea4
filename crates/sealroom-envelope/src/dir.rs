//! Sealing and unsealing paths: single files, and directory trees with a sealed manifest.
//!
//! A tree is sealed file by file into the same layout, plus `.sealroom-manifest`: a sealed JSON
//! list of every file's path, size and plaintext SHA-256 (and every directory). Unsealing checks
//! that the tree holds exactly the manifest's files and that each one matches it, so files that
//! were removed, added, renamed or swapped are caught, not only modified bytes.
//!
//! Every operation writes to a temporary file or directory beside the destination and renames it
//! only on success.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};

use crate::access::check_length;
use crate::atomic::{AtomicDir, AtomicFile};
use crate::error::{Error, IoContext, Result};
use crate::header::{Header, HEADER_LEN};
use crate::key::Cek;
use crate::stream::{self, Progress, SealSummary, UnsealSummary};

/// File name of the sealed manifest at the root of a sealed tree.
pub const MANIFEST_NAME: &str = ".sealroom-manifest";
/// Largest manifest accepted when unsealing (about a million entries).
const MAX_MANIFEST: u64 = 256 * 1024 * 1024;

/// The manifest of a sealed tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always `"sealroom-manifest"`.
    pub format: String,
    /// Manifest version, 1.
    pub version: u32,
    /// Every regular file, sorted by path.
    pub files: Vec<ManifestEntry>,
    /// Every directory (so empty ones survive), sorted.
    pub dirs: Vec<String>,
}

/// One file of a sealed tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    /// Path relative to the tree's root, `/`-separated.
    pub path: String,
    /// Plaintext size in bytes.
    pub size: u64,
    /// Plaintext SHA-256, lowercase hex.
    pub sha256: String,
}

/// A reader or writer that hashes what passes through it.
struct Hashing<T> {
    inner: T,
    ctx: digest::Context,
}

impl<T> Hashing<T> {
    fn new(inner: T) -> Self {
        Hashing {
            inner,
            ctx: digest::Context::new(&digest::SHA256),
        }
    }
    fn finish(self) -> (T, String) {
        (self.inner, hex::encode(self.ctx.finish().as_ref()))
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.ctx.update(&buf[..n]);
        Ok(n)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.ctx.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Total bytes of the regular files under `src` (or of `src` itself), for progress bars.
pub fn input_size(src: &Path) -> Result<u64> {
    let meta = fs::metadata(src).context(|| format!("cannot read {}", src.display()))?;
    if meta.is_file() {
        return Ok(meta.len());
    }
    let mut total = 0;
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    walk(src, Path::new(""), &mut files, &mut dirs)?;
    for rel in files {
        total += fs::metadata(src.join(&rel))
            .context(|| format!("cannot read {}", src.join(&rel).display()))?
            .len();
    }
    Ok(total)
}

/// Seals one file into `dest` (atomically).
pub fn seal_file(
    src: &Path,
    dest: &Path,
    cek: &Cek,
    overwrite: bool,
    progress: &dyn Progress,
) -> Result<SealSummary> {
    let input = open_input(src)?;
    let out = AtomicFile::create(dest, overwrite)?;
    let summary = crate::parallel::seal_file(&input, out.file(), cek, progress)?;
    out.commit()?;
    Ok(summary)
}

/// Unseals one file into `dest` (atomically): no output unless every segment verified.
pub fn unseal_file(
    src: &Path,
    dest: &Path,
    cek: &Cek,
    overwrite: bool,
    progress: &dyn Progress,
) -> Result<UnsealSummary> {
    let input = open_input(src)?;
    precheck_length(&input, src, cek)?;
    let out = AtomicFile::create(dest, overwrite)?;
    let summary = crate::parallel::unseal_file(&input, out.file(), cek, progress)?;
    out.commit()?;
    Ok(summary)
}

/// Fails fast, before writing anything, on a wrong key, a bad header, or a wrong file length.
fn precheck_length(file: &File, path: &Path, cek: &Cek) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let mut bytes = [0u8; HEADER_LEN];
    let mut n = 0;
    while n < HEADER_LEN {
        match file.read_at(&mut bytes[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
        }
    }
    let header = Header::parse(&bytes[..n])?;
    header.authenticate(&bytes, cek)?;
    let len = file
        .metadata()
        .context(|| format!("cannot read {}", path.display()))?
        .len();
    check_length(&header, len)
}

fn open_input(src: &Path) -> Result<File> {
    let meta = fs::metadata(src).context(|| format!("cannot read {}", src.display()))?;
    if !meta.is_file() {
        return Err(Error::Usage(format!(
            "{} is not a regular file",
            src.display()
        )));
    }
    File::open(src).context(|| format!("cannot open {}", src.display()))
}

/// Collects regular files and directories under `root/rel`, sorted, refusing anything else.
fn walk(root: &Path, rel: &Path, files: &mut Vec<PathBuf>, dirs: &mut Vec<PathBuf>) -> Result<()> {
    let here = root.join(rel);
    let mut entries: Vec<_> = fs::read_dir(&here)
        .context(|| format!("cannot list {}", here.display()))?
        .collect::<io::Result<_>>()
        .context(|| format!("cannot list {}", here.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        if name.to_str().is_none() {
            return Err(Error::Usage(format!(
                "{} has a name that is not UTF-8; sealed trees need UTF-8 names",
                entry.path().display()
            )));
        }
        let child = rel.join(&name);
        let kind = entry
            .file_type()
            .context(|| format!("cannot read {}", entry.path().display()))?;
        if kind.is_dir() {
            dirs.push(child.clone());
            walk(root, &child, files, dirs)?;
        } else if kind.is_file() {
            files.push(child);
        } else if kind.is_symlink() {
            return Err(Error::Usage(format!(
                "{} is a symbolic link; sealed trees hold only regular files and directories",
                entry.path().display()
            )));
        } else {
            return Err(Error::Usage(format!(
                "{} is not a regular file or directory",
                entry.path().display()
            )));
        }
    }
    Ok(())
}

fn slash_path(rel: &Path) -> String {
    rel.components()
        .filter_map(|c| c.as_os_str().to_str())
        .collect::<Vec<_>>()
        .join("/")
}

/// Seals the tree `src` into the new directory `dest` (atomically).
pub fn seal_tree(src: &Path, dest: &Path, cek: &Cek, progress: &dyn Progress) -> Result<Manifest> {
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    walk(src, Path::new(""), &mut files, &mut dirs)?;
    if files.iter().any(|f| f == Path::new(MANIFEST_NAME)) {
        return Err(Error::Usage(format!(
            "{} already holds a {MANIFEST_NAME}: it looks sealed already",
            src.display()
        )));
    }
    let out = AtomicDir::create(dest)?;
    for d in &dirs {
        let p = out.path().join(d);
        fs::create_dir(&p).context(|| format!("cannot create {}", p.display()))?;
    }
    let mut entries = Vec::with_capacity(files.len());
    for rel in &files {
        let from = src.join(rel);
        let to = out.path().join(rel);
        let mut input = Hashing::new(open_input(&from)?);
        let output = File::create(&to).context(|| format!("cannot create {}", to.display()))?;
        let (_, summary) = stream::seal(&mut input, output, cek, progress)?;
        let (_, sha256) = input.finish();
        entries.push(ManifestEntry {
            path: slash_path(rel),
            size: summary.plaintext_len,
            sha256,
        });
    }
    let manifest = Manifest {
        format: "sealroom-manifest".into(),
        version: 1,
        files: entries,
        dirs: dirs.iter().map(|d| slash_path(d)).collect(),
    };
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| Error::Usage(format!("cannot encode the manifest: {e}")))?;
    let to = out.path().join(MANIFEST_NAME);
    let output = File::create(&to).context(|| format!("cannot create {}", to.display()))?;
    stream::seal(&mut &json[..], output, cek, &())?;
    out.commit()?;
    Ok(manifest)
}

/// Reads and checks the sealed manifest of a tree.
pub fn read_manifest(src: &Path, cek: &Cek) -> Result<Manifest> {
    let path = src.join(MANIFEST_NAME);
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::NotSealed {
                reason: format!("{} is a directory without a {MANIFEST_NAME}", src.display()),
            })
        }
        Err(e) => return Err(Error::io(format!("cannot open {}", path.display()), e)),
    };
    precheck_length(&file, &path, cek)?;
    let size = file
        .metadata()
        .context(|| format!("cannot read {}", path.display()))?
        .len();
    if size > MAX_MANIFEST {
        return Err(Error::Usage(format!(
            "the manifest is {size} bytes; at most {MAX_MANIFEST} are accepted"
        )));
    }
    let (json, _) = stream::unseal(&mut file, Vec::new(), cek, &())?;
    let manifest: Manifest = serde_json::from_slice(&json).map_err(|e| Error::Tampered {
        reason: format!("the manifest does not parse: {e}"),
    })?;
    if manifest.format != "sealroom-manifest" || manifest.version != 1 {
        return Err(Error::Tampered {
            reason: format!(
                "unknown manifest format {:?} version {}",
                manifest.format, manifest.version
            ),
        });
    }
    for p in manifest
        .files
        .iter()
        .map(|f| &f.path)
        .chain(manifest.dirs.iter())
    {
        check_relative(p)?;
    }
    Ok(manifest)
}

/// A manifest path must be relative, `/`-separated, without `.`, `..` or empty parts.
fn check_relative(p: &str) -> Result<()> {
    let path = Path::new(p);
    let ok = !p.is_empty()
        && !p.contains('\\')
        && p.split('/').all(|c| !c.is_empty())
        && path.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(())
    } else {
        Err(Error::Tampered {
            reason: format!("the manifest lists an unsafe path {p:?}"),
        })
    }
}

/// Unseals the tree `src` into the new directory `dest` (atomically), checking it against its
/// manifest.
pub fn unseal_tree(
    src: &Path,
    dest: &Path,
    cek: &Cek,
    progress: &dyn Progress,
) -> Result<Manifest> {
    let manifest = read_manifest(src, cek)?;
    let mut files = Vec::new();
    let mut dirs = Vec::new();
    walk(src, Path::new(""), &mut files, &mut dirs)?;
    let present: BTreeSet<String> = files
        .iter()
        .map(|f| slash_path(f))
        .filter(|f| f != MANIFEST_NAME)
        .collect();
    let listed: BTreeSet<String> = manifest.files.iter().map(|f| f.path.clone()).collect();
    if let Some(missing) = listed.difference(&present).next() {
        return Err(Error::Tampered {
            reason: format!("{missing} is listed in the manifest but missing"),
        });
    }
    if let Some(extra) = present.difference(&listed).next() {
        return Err(Error::Tampered {
            reason: format!("{extra} is not listed in the manifest"),
        });
    }
    let out = AtomicDir::create(dest)?;
    for d in &manifest.dirs {
        let p = out.path().join(d);
        fs::create_dir_all(&p).context(|| format!("cannot create {}", p.display()))?;
    }
    for entry in &manifest.files {
        let from = src.join(&entry.path);
        let to = out.path().join(&entry.path);
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).context(|| format!("cannot create {}", parent.display()))?;
        }
        let mut input = open_input(&from)?;
        precheck_length(&input, &from, cek)?;
        let output =
            Hashing::new(File::create(&to).context(|| format!("cannot create {}", to.display()))?);
        let (output, summary) = stream::unseal(&mut input, output, cek, progress)
            .map_err(|e| in_file(e, &entry.path))?;
        let (_, sha256) = output.finish();
        if summary.plaintext_len != entry.size || sha256 != entry.sha256 {
            return Err(Error::Tampered {
                reason: format!(
                    "{} does not match the manifest (it was swapped or replaced with another file sealed under the same key)",
                    entry.path
                ),
            });
        }
    }
    out.commit()?;
    Ok(manifest)
}

/// Names the file in a tree that an error came from.
fn in_file(err: Error, path: &str) -> Error {
    match err {
        Error::TamperedSegment { index, start, end } => Error::Tampered {
            reason: format!("{path}: segment {index} failed authentication (bytes {start}..{end})"),
        },
        Error::Truncated { reason } => Error::Truncated {
            reason: format!("{path}: {reason}"),
        },
        other => other,
    }
}
