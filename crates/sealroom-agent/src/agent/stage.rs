//! Workspace staging: the package and the dataset, on memory-backed storage.
//!
//! Order matters, and is what [`super::run`] follows:
//!
//! 1. the package tar is downloaded (capped) and its SHA-256 checked against the bundle's
//!    workload digest ([`check_digest`]) **before anything else reads it**: the broker releases
//!    keys only to that digest, so a package that differs is refused here rather than later;
//! 2. the tar is extracted with limits ([`extract_package`]): only regular files and directories
//!    (no links, devices or FIFOs), relative paths without `..`, bounded path length, entry count
//!    and bytes, no path twice;
//! 3. the dataset's sealed files are downloaded ([`download_dataset`]) through a
//!    [`DatasetSource`], each checked to be a complete Sealroom sealed file (a plaintext file is
//!    refused: the DS certified the dataset holds no unencrypted data);
//! 4. once the keys are released, the package's secret files are decrypted in place with the AO's
//!    CEK ([`decrypt_secrets`]) and the dataset is opened, manifest checked, with the DS's CEK
//!    ([`crate::enclave_api::data::SealedDataset::open`]).
//!
//! The secrets manifest comes in two forms: `secrets.json` (`{"files": [...]}`, what the server
//! checks at upload) and `secrets` (one path per line, what [`crate::package`] reads). Both are
//! accepted ([`secret_paths`]); when only `secrets.json` exists, a `secrets` file with the same
//! paths is written next to it so that the container runner's build context leaves the sealed
//! files out too.
//!
//! Dataset URLs: the Sealroom signed URL of the built-in storage ([`SealroomSignedUrl`]) is
//! supported. Azure Blob SAS and S3 presigned URLs are recognised and refused with a clear error
//! for now; each is a further [`DatasetSource`] implementation returned by [`dataset_source`].

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sealroom_envelope::dir::MANIFEST_NAME;
use sealroom_envelope::header::{Header, HEADER_LEN};
use sealroom_envelope::Cek;

use super::client::{copy_capped, http_agent, ClientError};
use crate::package;

/// The JSON secrets manifest (the server's form).
pub const SECRETS_JSON: &str = "secrets.json";

/// Limits on what staging accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageLimits {
    /// Largest package tar.
    pub max_package_bytes: u64,
    /// Most entries in the package.
    pub max_package_entries: usize,
    /// Longest entry path, in bytes.
    pub max_path_len: usize,
    /// Largest dataset, all sealed files together.
    pub max_dataset_bytes: u64,
    /// Most files in the dataset.
    pub max_dataset_files: usize,
}

impl Default for StageLimits {
    fn default() -> Self {
        StageLimits {
            max_package_bytes: 4 << 30,
            max_package_entries: 10_000,
            max_path_len: 1024,
            max_dataset_bytes: 64 << 30,
            max_dataset_files: 100_000,
        }
    }
}

/// Errors staging a run's workspace. Each names what was refused.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The package is not the approved one.
    #[error(
        "the package's SHA-256 is {found}, not the approved workload digest {expected}: refused"
    )]
    DigestMismatch { expected: String, found: String },
    /// The bundle has no workload digest.
    #[error("the algorithm version has no workload digest: its package cannot be verified")]
    NoDigest,
    /// The package archive is refused.
    #[error("the package is refused: {0}")]
    Package(String),
    /// The secrets manifest is unusable.
    #[error("the secrets manifest is refused: {0}")]
    Secrets(String),
    /// A secret file does not decrypt.
    #[error("the package's secret file {path} does not decrypt: {source}")]
    Decrypt {
        path: String,
        #[source]
        source: sealroom_envelope::Error,
    },
    /// The dataset is refused.
    #[error("the dataset is refused: {0}")]
    Dataset(String),
    /// The dataset URL is of a kind this agent cannot read yet.
    #[error("the dataset URL is {0}, which this agent does not support yet")]
    UnsupportedUrl(&'static str),
    /// Downloading failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Local I/O.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// Result alias of staging.
pub type Result<T, E = StageError> = std::result::Result<T, E>;

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StageError {
    let what = what.into();
    move |source| StageError::Io { what, source }
}

// ---------------------------------------------------------------------------------------------
// Digest.

/// Lowercase hex SHA-256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(io(format!("cannot read {}", path.display())))?;
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(io(format!("cannot read {}", path.display())))?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    Ok(crate::agent::hex(ctx.finish().as_ref()))
}

/// Checks the package tar against the approved workload digest (hex SHA-256, optionally
/// `sha256:`-prefixed). Returns the digest as the broker expects it (the bundle's text).
pub fn check_digest(package_tar: &Path, expected: Option<&str>) -> Result<String> {
    let expected = expected
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(StageError::NoDigest)?;
    let want = expected
        .strip_prefix("sha256:")
        .unwrap_or(expected)
        .to_ascii_lowercase();
    let found = sha256_file(package_tar)?;
    if aws_lc_rs::constant_time::verify_slices_are_equal(want.as_bytes(), found.as_bytes()).is_err()
    {
        return Err(StageError::DigestMismatch {
            expected: expected.to_owned(),
            found,
        });
    }
    Ok(expected.to_owned())
}

// ---------------------------------------------------------------------------------------------
// Package extraction.

/// Normalizes an archive or manifest path: UTF-8, relative, no `..`, no control characters or
/// backslashes, `.` segments and a leading `./` dropped; `None` for the root itself.
pub fn normalize_path(raw: &[u8], max_len: usize) -> Result<Option<String>, String> {
    if raw.len() > max_len {
        return Err(format!("a path is longer than {max_len} bytes"));
    }
    let s = std::str::from_utf8(raw).map_err(|_| "a path is not UTF-8".to_owned())?;
    let shown = || s.chars().take(80).collect::<String>();
    if s.starts_with('/') {
        return Err(format!("{:?} is an absolute path", shown()));
    }
    if s.chars().any(|c| c.is_control() || c == '\\') {
        return Err(format!(
            "{:?} has a control character or a backslash",
            shown()
        ));
    }
    let mut parts = Vec::new();
    for seg in s.split('/') {
        match seg {
            "" | "." => {}
            ".." => return Err(format!("{:?} has a .. segment", shown())),
            seg => parts.push(seg),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

/// Extracts a package tar into `dest` (an existing, empty directory on memory-backed storage).
/// Refuses links and special files, absolute or `..` paths, duplicate paths, too many entries
/// and too many bytes. Returns the number of files written.
pub fn extract_package(tar_path: &Path, dest: &Path, limits: &StageLimits) -> Result<usize> {
    let file = File::open(tar_path).map_err(io("cannot read the package"))?;
    let mut archive = tar::Archive::new(file);
    let entries = archive
        .entries()
        .map_err(|e| StageError::Package(format!("not a tar archive: {e}")))?;
    let mut seen = BTreeSet::new();
    let mut count = 0usize;
    let mut files = 0usize;
    let mut total = 0u64;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| StageError::Package(format!("not a valid tar archive: {e}")))?;
        count += 1;
        if count > limits.max_package_entries {
            return Err(StageError::Package(format!(
                "more than {} entries",
                limits.max_package_entries
            )));
        }
        let kind = entry.header().entry_type();
        let raw = entry.path_bytes().into_owned();
        let path = normalize_path(&raw, limits.max_path_len).map_err(StageError::Package)?;
        if kind.is_dir() {
            if let Some(p) = path {
                if !seen.insert(p.clone()) {
                    // A directory listed twice is harmless, unless it was a file.
                    if dest.join(&p).is_file() {
                        return Err(StageError::Package(format!("{p:?} appears twice")));
                    }
                }
                create_dirs(dest, &p)?;
            }
            continue;
        }
        if !(kind.is_file() || kind.is_contiguous()) {
            return Err(StageError::Package(format!(
                "{:?} is a link or special file; a package holds only files and directories",
                String::from_utf8_lossy(&raw)
                    .chars()
                    .take(80)
                    .collect::<String>()
            )));
        }
        let Some(path) = path else {
            return Err(StageError::Package("a file entry has an empty path".into()));
        };
        if !seen.insert(path.clone()) {
            return Err(StageError::Package(format!("{path:?} appears twice")));
        }
        let size = entry.size();
        total = total.saturating_add(size);
        if total > limits.max_package_bytes {
            return Err(StageError::Package(format!(
                "more than {} bytes of files",
                limits.max_package_bytes
            )));
        }
        if let Some(parent) = Path::new(&path).parent() {
            if !parent.as_os_str().is_empty() {
                create_dirs(dest, &parent.to_string_lossy())?;
            }
        }
        let executable = entry
            .header()
            .mode()
            .map(|m| m & 0o111 != 0)
            .unwrap_or(false);
        let target = dest.join(&path);
        let mut out = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(if executable { 0o755 } else { 0o644 })
                .open(&target)
                .map_err(io(format!("cannot write {path}")))?
        };
        let copied = std::io::copy(&mut (&mut entry).take(size), &mut out)
            .map_err(|e| StageError::Package(format!("{path}: {e}")))?;
        if copied != size {
            return Err(StageError::Package(format!("{path} is cut short")));
        }
        files += 1;
    }
    if count == 0 {
        return Err(StageError::Package("the archive is empty".into()));
    }
    normalize_secrets_manifest(dest)?;
    Ok(files)
}

/// Creates `rel`'s directories under `root`, refusing to pass through anything but a directory.
fn create_dirs(root: &Path, rel: &str) -> Result<()> {
    let mut at = root.to_path_buf();
    for seg in rel.split('/') {
        at.push(seg);
        match std::fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(StageError::Package(format!(
                    "{rel:?} is both a file and a directory"
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&at).map_err(io(format!("cannot create {rel}")))?
            }
            Err(e) => return Err(io(format!("cannot create {rel}"))(e)),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Secrets.

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretsJson {
    files: Vec<String>,
}

/// The package's secret paths, from `secrets.json` (`{"files":[...]}`) or `secrets` (one path a
/// line). Both present: they must name the same paths.
pub fn secret_paths(dir: &Path) -> Result<Vec<String>> {
    let json_path = dir.join(SECRETS_JSON);
    let from_json = match std::fs::symlink_metadata(&json_path) {
        Ok(m) if m.is_file() && m.len() <= 1 << 20 => {
            let bytes = std::fs::read(&json_path).map_err(io("cannot read secrets.json"))?;
            let m: SecretsJson = serde_json::from_slice(&bytes).map_err(|e| {
                StageError::Secrets(format!(
                    "secrets.json is not {{\"files\": [\"relative/path\", ...]}}: {e}"
                ))
            })?;
            let mut out = BTreeSet::new();
            for f in &m.files {
                match normalize_path(f.as_bytes(), 1024).map_err(StageError::Secrets)? {
                    Some(p) => out.insert(p),
                    None => {
                        return Err(StageError::Secrets(
                            "secrets.json lists an empty path".into(),
                        ))
                    }
                };
            }
            Some(out)
        }
        Ok(_) => {
            return Err(StageError::Secrets(
                "secrets.json must be a regular file of at most 1 MiB".into(),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io("cannot read secrets.json")(e)),
    };
    let lines_exist = dir.join(package::SECRETS_MANIFEST).exists();
    let from_lines = if lines_exist {
        let mut out = BTreeSet::new();
        for p in package::secret_paths(dir).map_err(|e| StageError::Secrets(e.to_string()))? {
            if let Some(p) = normalize_path(p.as_bytes(), 1024).map_err(StageError::Secrets)? {
                out.insert(p);
            }
        }
        Some(out)
    } else {
        None
    };
    match (from_json, from_lines) {
        (Some(a), Some(b)) if a != b => Err(StageError::Secrets(
            "secrets.json and secrets name different files".into(),
        )),
        (Some(a), _) => Ok(a.into_iter().collect()),
        (None, Some(b)) => Ok(b.into_iter().collect()),
        (None, None) => Ok(Vec::new()),
    }
}

/// Writes `secrets` (lines) from `secrets.json` when only the JSON form exists, so that
/// [`crate::package::build_context`] leaves the secret files out of an image.
fn normalize_secrets_manifest(dir: &Path) -> Result<()> {
    if !dir.join(SECRETS_JSON).exists() || dir.join(package::SECRETS_MANIFEST).exists() {
        return Ok(());
    }
    let paths = secret_paths(dir)?;
    let mut text = String::from("# written by the agent from secrets.json\n");
    for p in paths {
        text.push_str(&p);
        text.push('\n');
    }
    std::fs::write(dir.join(package::SECRETS_MANIFEST), text)
        .map_err(io("cannot write the secrets manifest"))
}

/// Decrypts the package's secret files in place with the AO's CEK. A listed directory stands for
/// every file under it; a listed path that does not exist or is not a sealed file is refused.
/// Returns the number of files decrypted.
pub fn decrypt_secrets(dir: &Path, cek: &Cek) -> Result<usize> {
    let mut files = Vec::new();
    for rel in secret_paths(dir)? {
        let path = dir.join(&rel);
        let meta = std::fs::symlink_metadata(&path).map_err(|_| {
            StageError::Secrets(format!(
                "{rel} is listed as secret but is not in the package"
            ))
        })?;
        if meta.is_dir() {
            collect_files(&path, &mut files)?;
        } else if meta.is_file() {
            files.push(path);
        } else {
            return Err(StageError::Secrets(format!(
                "{rel} is neither a file nor a directory"
            )));
        }
    }
    files.sort();
    files.dedup();
    for path in &files {
        let rel = path.strip_prefix(dir).unwrap_or(path).display().to_string();
        let mut head = Vec::with_capacity(HEADER_LEN);
        File::open(path)
            .and_then(|f| f.take(HEADER_LEN as u64).read_to_end(&mut head))
            .map_err(io(format!("cannot read {rel}")))?;
        if Header::parse(&head).is_err() {
            return Err(StageError::Secrets(format!(
                "{rel} is listed as secret but is not a sealed file"
            )));
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let plain = path.with_file_name(format!(".{name}.sealroom-plain"));
        sealroom_envelope::dir::unseal_file(path, &plain, cek, false, &()).map_err(|source| {
            StageError::Decrypt {
                path: rel.clone(),
                source,
            }
        })?;
        // The plaintext keeps the package file's mode (from the tar): the sandbox's user, which
        // is not the agent's on a rootful container engine, must read it as it reads the
        // package's plaintext files. The run's directory (0700) keeps everyone else out.
        let mode = std::fs::metadata(path)
            .map_err(io(format!("cannot read {rel}")))?
            .permissions();
        std::fs::set_permissions(&plain, mode)
            .map_err(io(format!("cannot set the mode of {rel}")))?;
        std::fs::rename(&plain, path).map_err(io(format!("cannot replace {rel}")))?;
    }
    Ok(files.len())
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(io(format!("cannot read {}", dir.display())))?;
    for e in rd {
        let e = e.map_err(io(format!("cannot read {}", dir.display())))?;
        let t = e
            .file_type()
            .map_err(io(format!("cannot read {}", dir.display())))?;
        if t.is_dir() {
            collect_files(&e.path(), out)?;
        } else if t.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Datasets.

/// One file of a remote dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// Relative path, `/`-separated.
    pub path: String,
    /// Size in bytes (sealed).
    pub size: u64,
}

/// Where a sealed dataset is read from: one implementation per kind of signed URL.
pub trait DatasetSource: Send + Sync + std::fmt::Debug {
    /// Every file of the dataset (the sealed manifest included).
    fn list(&self) -> Result<Vec<RemoteFile>>;
    /// Copies one file into `dest`, refusing more than `max` bytes.
    fn fetch(&self, path: &str, dest: &mut dyn Write, max: u64) -> Result<u64>;
}

/// Picks the [`DatasetSource`] for a dataset URL.
pub fn dataset_source(url: &str, timeout: Duration) -> Result<Box<dyn DatasetSource>> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let host = base
        .split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or(""))
        .unwrap_or("");
    if query.split('&').any(|kv| kv == "sv=sealroom1") && base.contains("/blobs/") {
        return Ok(Box::new(SealroomSignedUrl::new(url, timeout)?));
    }
    if host.ends_with(".blob.core.windows.net") || query.contains("sig=") && query.contains("sr=") {
        return Err(StageError::UnsupportedUrl("an Azure Blob SAS URL"));
    }
    if query.contains("X-Amz-Signature=") {
        return Err(StageError::UnsupportedUrl("an S3 presigned URL"));
    }
    Err(StageError::UnsupportedUrl("not a Sealroom signed URL"))
}

/// A directory URL of Sealroom's built-in storage (`/blobs/...dir/?sv=sealroom1&sp=l&...`):
/// `GET` on it lists `{"files":[{"path","size"}]}`; a file is read by appending its path to the
/// directory, with the same query.
#[derive(Debug)]
pub struct SealroomSignedUrl {
    dir: String,
    query: String,
    http: ureq::Agent,
    timeout: Duration,
}

#[derive(serde::Deserialize)]
struct Listing {
    files: Vec<ListedFile>,
}

#[derive(serde::Deserialize)]
struct ListedFile {
    path: String,
    size: u64,
}

impl SealroomSignedUrl {
    /// Parses the URL; it must name a directory (end in `/`).
    pub fn new(url: &str, timeout: Duration) -> Result<Self> {
        let (dir, query) = url.split_once('?').unwrap_or((url, ""));
        if !dir.ends_with('/') {
            return Err(StageError::Dataset(
                "the dataset URL must be a signed directory URL (ending in /, sp=l)".into(),
            ));
        }
        let https = dir.starts_with("https://");
        if !https && !dir.starts_with("http://") {
            return Err(StageError::Dataset(
                "the dataset URL must be http:// or https://".into(),
            ));
        }
        Ok(SealroomSignedUrl {
            dir: dir.to_owned(),
            query: query.to_owned(),
            http: http_agent(https, None)?,
            timeout,
        })
    }

    fn get(&self, what: &str, url: &str) -> Result<ureq::http::Response<ureq::Body>> {
        let mut last = None;
        for attempt in 0..4u32 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(250 << attempt));
            }
            match self
                .http
                .get(url)
                .config()
                .timeout_global(Some(self.timeout))
                .build()
                .call()
            {
                Ok(r) if r.status().is_server_error() => {
                    last = Some(format!("the storage answered {}", r.status()))
                }
                Ok(r) if !r.status().is_success() => {
                    return Err(StageError::Dataset(format!(
                        "{what}: the storage answered {}",
                        r.status()
                    )))
                }
                Ok(r) => return Ok(r),
                Err(e) => last = Some(e.to_string()),
            }
        }
        Err(StageError::Client(ClientError::Transport {
            what: what.to_owned(),
            message: last.unwrap_or_default(),
        }))
    }
}

impl DatasetSource for SealroomSignedUrl {
    fn list(&self) -> Result<Vec<RemoteFile>> {
        let what = "listing the dataset";
        let url = format!("{}?{}", self.dir, self.query);
        let mut resp = self.get(what, &url)?;
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .map_err(|e| StageError::Dataset(format!("{what}: {e}")))?;
        let listing: Listing = serde_json::from_slice(&bytes)
            .map_err(|e| StageError::Dataset(format!("{what}: not a listing: {e}")))?;
        Ok(listing
            .files
            .into_iter()
            .map(|f| RemoteFile {
                path: f.path,
                size: f.size,
            })
            .collect())
    }

    fn fetch(&self, path: &str, dest: &mut dyn Write, max: u64) -> Result<u64> {
        // Paths of the built-in storage are letters, digits, `.`, `_`, `-` and `/`: nothing to
        // escape. Anything else is refused rather than guessed at.
        if !path
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-' | b'/'))
        {
            return Err(StageError::Dataset(format!(
                "{:?} is not a path of Sealroom's storage",
                path.chars().take(80).collect::<String>()
            )));
        }
        let what = format!("downloading {path}");
        let url = format!("{}{path}?{}", self.dir, self.query);
        let resp = self.get(&what, &url)?;
        Ok(copy_capped(&what, resp, dest, max)?)
    }
}

/// What was downloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatasetSummary {
    /// Files.
    pub files: usize,
    /// Bytes (sealed).
    pub bytes: u64,
}

/// Downloads every file of a sealed dataset into `dest`, checking each is a complete sealed file
/// and that the sealed manifest is there. The manifest itself is checked (with the DS's CEK)
/// when the dataset is opened.
pub fn download_dataset(
    source: &dyn DatasetSource,
    dest: &Path,
    limits: &StageLimits,
) -> Result<DatasetSummary> {
    let files = source.list()?;
    if files.len() > limits.max_dataset_files {
        return Err(StageError::Dataset(format!(
            "more than {} files",
            limits.max_dataset_files
        )));
    }
    let total: u64 = files.iter().map(|f| f.size).fold(0, u64::saturating_add);
    if total > limits.max_dataset_bytes {
        return Err(StageError::Dataset(format!(
            "{total} bytes is more than the limit of {}",
            limits.max_dataset_bytes
        )));
    }
    let mut seen = BTreeSet::new();
    for f in &files {
        let rel = normalize_path(f.path.as_bytes(), limits.max_path_len)
            .map_err(StageError::Dataset)?
            .ok_or_else(|| StageError::Dataset("a listed file has an empty path".into()))?;
        if !seen.insert(rel.clone()) {
            return Err(StageError::Dataset(format!("{rel} is listed twice")));
        }
    }
    if !seen.contains(MANIFEST_NAME) {
        return Err(StageError::Dataset(format!(
            "it has no sealed manifest ({MANIFEST_NAME}): seal the dataset directory with `sealroom encrypt DIR`"
        )));
    }
    for f in &files {
        let rel = normalize_path(f.path.as_bytes(), limits.max_path_len)
            .map_err(StageError::Dataset)?
            .unwrap_or_default();
        if let Some(parent) = Path::new(&rel).parent() {
            if !parent.as_os_str().is_empty() {
                create_dirs(dest, &parent.to_string_lossy())
                    .map_err(|e| StageError::Dataset(e.to_string()))?;
            }
        }
        let target = dest.join(&rel);
        let mut out = File::options()
            .write(true)
            .create_new(true)
            .open(&target)
            .map_err(io(format!("cannot write {rel}")))?;
        let got = source.fetch(&f.path, &mut out, f.size)?;
        if got != f.size {
            return Err(StageError::Dataset(format!(
                "{rel} is {got} bytes, the listing says {}",
                f.size
            )));
        }
        check_sealed_file(&target, got).map_err(|why| {
            StageError::Dataset(format!(
                "{rel} is not a Sealroom sealed file ({why}); a dataset holds only sealed files"
            ))
        })?;
    }
    Ok(DatasetSummary {
        files: files.len(),
        bytes: total,
    })
}

/// A complete sealed file: its header parses and its length is what the header says.
fn check_sealed_file(path: &Path, size: u64) -> Result<(), String> {
    let mut head = Vec::with_capacity(HEADER_LEN);
    File::open(path)
        .and_then(|f| f.take(HEADER_LEN as u64).read_to_end(&mut head))
        .map_err(|e| e.to_string())?;
    let header = Header::parse(&head).map_err(|e| e.to_string())?;
    if header.sealed_len() != size {
        return Err(format!(
            "{size} bytes, its header says {}",
            header.sealed_len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    /// A raw ustar entry, to write what `tar::Builder` refuses (`..`, absolute paths).
    fn raw_entry(name: &[u8], kind: u8, data: &[u8]) -> Vec<u8> {
        let mut h = tar::Header::new_old();
        h.as_mut_bytes()[..name.len()].copy_from_slice(name);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::new(kind));
        h.set_cksum();
        let mut out = h.as_bytes().to_vec();
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn extracts_files_and_directories() {
        let t = tempfile::tempdir().unwrap();
        let tar = write(
            t.path(),
            "p.tar",
            &tar_of(&[("./run.sh", b"echo hi\n"), ("src/a/main.py", b"print(1)\n")]),
        );
        let dest = t.path().join("out");
        std::fs::create_dir(&dest).unwrap();
        let n = extract_package(&tar, &dest, &StageLimits::default()).unwrap();
        assert_eq!(n, 2);
        assert_eq!(std::fs::read(dest.join("run.sh")).unwrap(), b"echo hi\n");
        assert_eq!(
            std::fs::read(dest.join("src/a/main.py")).unwrap(),
            b"print(1)\n"
        );
    }

    #[test]
    fn tar_limits() {
        let t = tempfile::tempdir().unwrap();
        let limits = StageLimits {
            max_package_entries: 2,
            max_package_bytes: 10,
            max_path_len: 20,
            ..Default::default()
        };
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "entries",
                tar_of(&[("a", b"1"), ("b", b"2"), ("c", b"3")]),
                "more than 2 entries",
            ),
            (
                "bytes",
                tar_of(&[("a", b"0123456789x")]),
                "more than 10 bytes",
            ),
            (
                "path",
                tar_of(&[("a/very/long/path/name/here.txt", b"1")]),
                "longer than 20",
            ),
            ("dotdot", raw_entry(b"../evil", b'0', b"x"), ".. segment"),
            ("absolute", raw_entry(b"/etc/evil", b'0', b"x"), "absolute"),
            ("symlink", raw_entry(b"link", b'2', b""), "link or special"),
            ("hardlink", raw_entry(b"hard", b'1', b""), "link or special"),
            ("fifo", raw_entry(b"fifo", b'6', b""), "link or special"),
            (
                "duplicate",
                [raw_entry(b"a", b'0', b"1"), raw_entry(b"a", b'0', b"2")].concat(),
                "appears twice",
            ),
            ("empty", vec![0u8; 1024], "empty"),
        ];
        for (name, bytes, expect) in cases {
            let tar = write(t.path(), &format!("{name}.tar"), &bytes);
            let dest = t.path().join(name);
            std::fs::create_dir(&dest).unwrap();
            let err = extract_package(&tar, &dest, &limits).unwrap_err();
            assert!(err.to_string().contains(expect), "{name}: {err}");
        }
        // Nothing escaped the destination.
        assert!(!t.path().join("evil").exists());
    }

    #[test]
    fn digest_mismatch_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let tar = write(t.path(), "p.tar", b"package bytes");
        let good = sha256_file(&tar).unwrap();
        assert_eq!(check_digest(&tar, Some(&good)).unwrap(), good);
        assert!(check_digest(&tar, Some(&format!("sha256:{}", good.to_uppercase()))).is_ok());
        let err = check_digest(&tar, Some(&"00".repeat(32))).unwrap_err();
        assert!(matches!(err, StageError::DigestMismatch { .. }), "{err}");
        assert!(matches!(
            check_digest(&tar, None).unwrap_err(),
            StageError::NoDigest
        ));
    }

    fn sealed(cek: &Cek, plain: &[u8]) -> Vec<u8> {
        let t = tempfile::tempdir().unwrap();
        let src = write(t.path(), "plain", plain);
        let dest = t.path().join("sealed");
        sealroom_envelope::dir::seal_file(&src, &dest, cek, false, &()).unwrap();
        std::fs::read(dest).unwrap()
    }

    #[test]
    fn secrets_are_decrypted_in_both_manifest_forms() {
        let cek = Cek::generate().unwrap();
        for manifest in [
            (
                "secrets.json",
                &br#"{"files": ["model.bin", "weights/"]}"#[..],
            ),
            ("secrets", &b"# sealed\n./model.bin\nweights/\n"[..]),
        ] {
            let t = tempfile::tempdir().unwrap();
            let tar = write(
                t.path(),
                "p.tar",
                &tar_of(&[
                    ("run.sh", b"echo\n"),
                    manifest,
                    ("model.bin", &sealed(&cek, b"the weights")),
                    ("weights/w1", &sealed(&cek, b"w1")),
                    ("weights/sub/w2", &sealed(&cek, b"w2")),
                ]),
            );
            let dest = t.path().join("pkg");
            std::fs::create_dir(&dest).unwrap();
            extract_package(&tar, &dest, &StageLimits::default()).unwrap();
            // The JSON form gets a `secrets` twin for the container build context.
            let lines = package::secret_paths(&dest).unwrap();
            assert_eq!(lines, vec!["model.bin", "weights"], "{}", manifest.0);
            assert_eq!(decrypt_secrets(&dest, &cek).unwrap(), 3);
            assert_eq!(
                std::fs::read(dest.join("model.bin")).unwrap(),
                b"the weights"
            );
            assert_eq!(std::fs::read(dest.join("weights/sub/w2")).unwrap(), b"w2");
            assert_eq!(std::fs::read(dest.join("run.sh")).unwrap(), b"echo\n");
            // Decrypted files keep the package's modes (a container's user must read them).
            use std::os::unix::fs::PermissionsExt;
            for f in ["run.sh", "model.bin", "weights/sub/w2"] {
                let mode = std::fs::metadata(dest.join(f))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o444, 0o444, "{f}: {mode:o}");
            }
        }
    }

    #[test]
    fn bad_secrets_are_refused() {
        let cek = Cek::generate().unwrap();
        let t = tempfile::tempdir().unwrap();
        // A listed secret in plaintext.
        let d = t.path().join("plain");
        std::fs::create_dir(&d).unwrap();
        write(&d, "secrets.json", br#"{"files":["model.bin"]}"#);
        write(&d, "model.bin", b"not sealed");
        let err = decrypt_secrets(&d, &cek).unwrap_err();
        assert!(err.to_string().contains("not a sealed file"), "{err}");
        // Sealed under another key: nothing decrypted is left behind.
        let d = t.path().join("wrongkey");
        std::fs::create_dir(&d).unwrap();
        write(&d, "secrets.json", br#"{"files":["model.bin"]}"#);
        write(&d, "model.bin", &sealed(&Cek::generate().unwrap(), b"x"));
        let err = decrypt_secrets(&d, &cek).unwrap_err();
        assert!(matches!(err, StageError::Decrypt { .. }), "{err}");
        let names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        // Missing, and a disagreement between the two forms.
        let d = t.path().join("missing");
        std::fs::create_dir(&d).unwrap();
        write(&d, "secrets.json", br#"{"files":["nope"]}"#);
        assert!(decrypt_secrets(&d, &cek).is_err());
        write(&d, "secrets", "other\n".as_bytes());
        let err = secret_paths(&d).unwrap_err();
        assert!(err.to_string().contains("different"), "{err}");
        write(&d, "secrets.json", br#"{"files":["../x"]}"#);
        assert!(secret_paths(&d).is_err());
    }

    /// A dataset source over a local directory: the download checks, without a server.
    #[derive(Debug)]
    struct LocalDir(PathBuf);

    impl DatasetSource for LocalDir {
        fn list(&self) -> Result<Vec<RemoteFile>> {
            let mut out = Vec::new();
            let mut files = Vec::new();
            collect_files(&self.0, &mut files)?;
            for f in files {
                out.push(RemoteFile {
                    path: f.strip_prefix(&self.0).unwrap().display().to_string(),
                    size: std::fs::metadata(&f).unwrap().len(),
                });
            }
            Ok(out)
        }
        fn fetch(&self, path: &str, dest: &mut dyn Write, max: u64) -> Result<u64> {
            let bytes = std::fs::read(self.0.join(path)).unwrap();
            assert!(bytes.len() as u64 <= max);
            dest.write_all(&bytes).unwrap();
            Ok(bytes.len() as u64)
        }
    }

    #[test]
    fn dataset_download_checks_sealed_files() {
        let cek = Cek::generate().unwrap();
        let t = tempfile::tempdir().unwrap();
        let plain = t.path().join("plain");
        std::fs::create_dir_all(plain.join("sub")).unwrap();
        write(&plain, "a.csv", b"1,2\n");
        write(&plain.join("sub"), "b.csv", b"3,4\n");
        let sealed_dir = t.path().join("sealed");
        sealroom_envelope::dir::seal_tree(&plain, &sealed_dir, &cek, &()).unwrap();

        let dest = t.path().join("dl");
        std::fs::create_dir(&dest).unwrap();
        let s = download_dataset(
            &LocalDir(sealed_dir.clone()),
            &dest,
            &StageLimits::default(),
        )
        .unwrap();
        assert_eq!(s.files, 3);
        let ds = crate::enclave_api::data::SealedDataset::open(&dest, cek.clone()).unwrap();
        use crate::enclave_api::data::DataSource;
        let names: Vec<_> = ds.list().into_iter().map(|f| f.name).collect();
        assert_eq!(names, vec!["a.csv", "sub/b.csv"]);

        // A plaintext file among the sealed ones is refused.
        write(&sealed_dir, "leak.csv", b"name,diagnosis\n");
        let dest = t.path().join("dl2");
        std::fs::create_dir(&dest).unwrap();
        let err = download_dataset(
            &LocalDir(sealed_dir.clone()),
            &dest,
            &StageLimits::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("leak.csv is not a Sealroom sealed file"),
            "{err}"
        );
        std::fs::remove_file(sealed_dir.join("leak.csv")).unwrap();

        // No manifest: refused.
        std::fs::remove_file(sealed_dir.join(MANIFEST_NAME)).unwrap();
        let dest = t.path().join("dl3");
        std::fs::create_dir(&dest).unwrap();
        let err =
            download_dataset(&LocalDir(sealed_dir), &dest, &StageLimits::default()).unwrap_err();
        assert!(err.to_string().contains("no sealed manifest"), "{err}");
    }

    #[test]
    fn dataset_urls() {
        let d = Duration::from_secs(5);
        assert!(dataset_source(
            "http://127.0.0.1:8080/blobs/projects/p/storage/o/ds1/?sv=sealroom1&sp=l&se=1&sig=00",
            d
        )
        .is_ok());
        let err = dataset_source(
            "http://127.0.0.1:8080/blobs/projects/p/storage/o/ds1/a.csv?sv=sealroom1&sp=r&se=1&sig=00",
            d,
        )
        .unwrap_err();
        assert!(err.to_string().contains("directory URL"), "{err}");
        let err = dataset_source(
            "https://acct.blob.core.windows.net/c/ds?sv=2022-11-02&sr=c&sp=rl&sig=x",
            d,
        )
        .unwrap_err();
        assert!(err.to_string().contains("Azure"), "{err}");
        let err = dataset_source(
            "https://b.s3.amazonaws.com/ds/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=ab",
            d,
        )
        .unwrap_err();
        assert!(err.to_string().contains("S3"), "{err}");
    }
}
