//! Checks of an uploaded algorithm package (manual §14.5.5.1, "Validating files").
//!
//! A package is an uncompressed tar archive of the package directory, entries relative to its
//! root (`tar -C DIR -cf package.tar .`; a leading `./` is ignored):
//!
//! - a plaintext `Dockerfile` or `run.sh` (the agent's entry point, see
//!   `sealroom-agent/src/package.rs`);
//! - the plaintext secrets manifest [`SECRETS_MANIFEST`], `{"files": ["relative/path", ...]}`,
//!   naming the files the AO sealed (each a Sealroom sealed file, under the AO's CEK);
//! - anything else, plaintext or sealed.
//!
//! The archive is read once, bounded: at most [`MAX_ENTRIES`] entries, paths of at most
//! [`MAX_PATH_LEN`] bytes, relative without `..`, only regular files and directories, no path
//! twice, extension headers (GNU long names, PAX) small and without size overrides (so that every
//! tar reader sees the same files). Breaking one of these refuses the upload
//! ([`PackageReject`]); a missing entry point, manifest or key only fails its upload step.

use std::collections::BTreeMap;
use std::io::Read;

use sealroom_envelope::header::{Header, HEADER_LEN};
use sealroom_types::{UploadStep, UploadStepState, UploadStepStatus, WcekVersion};

/// The secrets manifest's file name at the package root.
pub const SECRETS_MANIFEST: &str = "secrets.json";
/// Most entries (files and directories) in a package.
pub const MAX_ENTRIES: usize = 10_000;
/// Longest entry path, in bytes.
pub const MAX_PATH_LEN: usize = 1024;
/// Largest secrets manifest.
pub const MAX_MANIFEST_LEN: u64 = 1 << 20;
/// Largest extension header (GNU long name, PAX record set).
const MAX_EXTENSION_LEN: u64 = 64 * 1024;
/// Most raw tar headers (entries plus their extension headers).
const MAX_RAW_HEADERS: usize = 3 * MAX_ENTRIES;

/// Why a package is refused outright (nothing is stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PackageReject(pub String);

fn reject(msg: impl Into<String>) -> PackageReject {
    PackageReject(msg.into())
}

/// What a sealed-file header said, or why it is not one.
type SealedCheck = Result<String, String>;

/// What was found in a package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inspection {
    /// Whether the root has a plaintext `Dockerfile`.
    pub dockerfile: Option<Result<(), String>>,
    /// Whether the root has a plaintext `run.sh`.
    pub run_sh: Option<Result<(), String>>,
    /// The secrets manifest's file list, or why it is missing or unusable.
    pub manifest: Option<Result<Vec<String>, String>>,
    /// Every regular file: its sealed-file key id (hex), or why it is not a sealed file.
    pub files: BTreeMap<String, SealedCheck>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretsManifest {
    files: Vec<String>,
}

/// Normalizes an entry path: UTF-8, relative, no `..`, `.` segments and a leading `./` dropped;
/// `None` for the root itself.
pub fn normalize_path(raw: &[u8]) -> Result<Option<String>, PackageReject> {
    if raw.len() > MAX_PATH_LEN {
        return Err(reject(format!(
            "an entry path is longer than {MAX_PATH_LEN} bytes"
        )));
    }
    let s = std::str::from_utf8(raw).map_err(|_| reject("an entry path is not UTF-8"))?;
    let shown = || s.chars().take(80).collect::<String>();
    if s.starts_with('/') || s.starts_with('\\') {
        return Err(reject(format!("entry {:?} has an absolute path", shown())));
    }
    if s.chars().any(|c| c.is_control() || c == '\\') {
        return Err(reject(format!(
            "entry {:?} has a control character or a backslash in its path",
            shown()
        )));
    }
    let mut parts = Vec::new();
    for seg in s.split('/') {
        match seg {
            "" | "." => {}
            ".." => return Err(reject(format!("entry {:?} has a .. segment", shown()))),
            seg => parts.push(seg),
        }
    }
    if parts.is_empty() {
        Ok(None)
    } else {
        Ok(Some(parts.join("/")))
    }
}

/// Reads at most `limit` bytes; `None` if there were more.
fn read_limited(r: &mut dyn Read, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    r.take(limit + 1).read_to_end(&mut out)?;
    Ok((out.len() as u64 <= limit).then_some(out))
}

/// The `path` of a PAX record set (refusing records that change how the archive is cut).
fn pax_path(data: &[u8]) -> Result<Option<Vec<u8>>, PackageReject> {
    let mut rest = data;
    let mut path = None;
    while !rest.is_empty() {
        let sp = rest
            .iter()
            .position(|&c| c == b' ')
            .ok_or_else(|| reject("malformed PAX header"))?;
        let len: usize = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|n| n.parse().ok())
            .filter(|&n: &usize| n > sp + 1 && n <= rest.len())
            .ok_or_else(|| reject("malformed PAX header"))?;
        let record = &rest[sp + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        let eq = record
            .iter()
            .position(|&c| c == b'=')
            .ok_or_else(|| reject("malformed PAX header"))?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        if key == b"size" || key.starts_with(b"GNU.sparse") {
            return Err(reject(
                "PAX size and sparse records are not supported in a package",
            ));
        }
        if key == b"path" {
            path = Some(value.to_vec());
        }
        rest = &rest[len..];
    }
    Ok(path)
}

/// Whether `bytes` start a Sealroom sealed file: its CEK's key id (hex), or why not.
pub fn sealed_key_id(bytes: &[u8]) -> SealedCheck {
    Header::parse(bytes)
        .map(|h| h.key_id.to_string())
        .map_err(|e| e.to_string())
}

/// Reads a package archive.
pub fn inspect(reader: impl Read) -> Result<Inspection, PackageReject> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| reject(format!("not a tar archive: {e}")))?
        .raw(true);
    let mut found = Inspection::default();
    let mut seen_dirs = std::collections::BTreeSet::new();
    let mut next_path: Option<Vec<u8>> = None;
    let mut raw_headers = 0usize;
    let mut count = 0usize;
    for entry in entries {
        let mut entry = entry.map_err(|e| reject(format!("not a valid tar archive: {e}")))?;
        raw_headers += 1;
        if raw_headers > MAX_RAW_HEADERS {
            return Err(reject(format!(
                "the package has more than {MAX_ENTRIES} entries"
            )));
        }
        let kind = entry.header().entry_type();
        let size = entry.size();
        if kind.is_gnu_longname() || kind.is_pax_local_extensions() {
            if next_path.is_some() {
                return Err(reject("two extension headers for one entry"));
            }
            let data = read_limited(&mut entry, MAX_EXTENSION_LEN)
                .map_err(|e| reject(format!("not a valid tar archive: {e}")))?
                .ok_or_else(|| reject("an extension header is too large"))?;
            next_path = if kind.is_gnu_longname() {
                let mut name = data;
                while name.last() == Some(&0) {
                    name.pop();
                }
                Some(name)
            } else {
                pax_path(&data)?
            };
            continue;
        }
        if kind.is_pax_global_extensions() {
            let data = read_limited(&mut entry, MAX_EXTENSION_LEN)
                .map_err(|e| reject(format!("not a valid tar archive: {e}")))?
                .ok_or_else(|| reject("an extension header is too large"))?;
            pax_path(&data)?;
            continue;
        }
        let raw_path = match next_path.take() {
            Some(p) => p,
            None => entry.header().path_bytes().into_owned(),
        };
        count += 1;
        if count > MAX_ENTRIES {
            return Err(reject(format!(
                "the package has more than {MAX_ENTRIES} entries"
            )));
        }
        let path = normalize_path(&raw_path)?;
        if kind.is_dir() {
            if let Some(p) = path {
                if found.files.contains_key(&p) {
                    return Err(reject(format!("{p:?} is both a file and a directory")));
                }
                seen_dirs.insert(p);
            }
            continue;
        }
        if !(kind.is_file() || kind.is_contiguous()) {
            let shown = String::from_utf8_lossy(&raw_path)
                .chars()
                .take(80)
                .collect::<String>();
            return Err(reject(format!(
                "entry {shown:?} is a link or special file; a package holds only files and directories"
            )));
        }
        let Some(path) = path else {
            return Err(reject("a file entry has an empty path"));
        };
        if found.files.contains_key(&path) || seen_dirs.contains(&path) {
            return Err(reject(format!("{path:?} appears twice in the package")));
        }
        let io = |e: std::io::Error| reject(format!("not a valid tar archive: {e}"));
        let sealed = if path == SECRETS_MANIFEST {
            let check = match read_limited(&mut entry, MAX_MANIFEST_LEN).map_err(io)? {
                None => Err(format!(
                    "{SECRETS_MANIFEST} is larger than {MAX_MANIFEST_LEN} bytes"
                )),
                Some(bytes) => {
                    let s = sealed_key_id(&bytes);
                    found.manifest = Some(parse_manifest(&bytes));
                    s
                }
            };
            if found.manifest.is_none() {
                found.manifest = Some(Err(format!(
                    "{SECRETS_MANIFEST} is larger than {MAX_MANIFEST_LEN} bytes"
                )));
            }
            check
        } else {
            let mut head = Vec::with_capacity(HEADER_LEN);
            (&mut entry)
                .take(HEADER_LEN as u64)
                .read_to_end(&mut head)
                .map_err(io)?;
            sealed_key_id(&head)
        };
        let plaintext = |what: &str| match &sealed {
            Ok(_) => Err(format!("{what} is sealed; it must be plaintext")),
            Err(_) if size == 0 => Err(format!("{what} is empty")),
            Err(_) => Ok(()),
        };
        if path == "Dockerfile" {
            found.dockerfile = Some(plaintext("Dockerfile"));
        } else if path == "run.sh" {
            found.run_sh = Some(plaintext("run.sh"));
        } else if path == SECRETS_MANIFEST && sealed.is_ok() {
            found.manifest = Some(Err(format!(
                "{SECRETS_MANIFEST} is sealed; it must be plaintext"
            )));
        }
        found.files.insert(path, sealed);
    }
    if next_path.is_some() {
        return Err(reject("the archive ends after an extension header"));
    }
    if count == 0 {
        return Err(reject("the archive is empty"));
    }
    Ok(found)
}

fn parse_manifest(bytes: &[u8]) -> Result<Vec<String>, String> {
    let m: SecretsManifest = serde_json::from_slice(bytes).map_err(|e| {
        format!("{SECRETS_MANIFEST} is not {{\"files\": [\"relative/path\", ...]}}: {e}")
    })?;
    if m.files.len() > MAX_ENTRIES {
        return Err(format!(
            "{SECRETS_MANIFEST} lists more than {MAX_ENTRIES} files"
        ));
    }
    let mut out = Vec::with_capacity(m.files.len());
    for f in &m.files {
        match normalize_path(f.as_bytes()) {
            Ok(Some(p)) => out.push(p),
            Ok(None) => return Err(format!("{SECRETS_MANIFEST} lists an empty path")),
            Err(e) => return Err(format!("{SECRETS_MANIFEST}: {e}")),
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The outcome of the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutcome {
    /// Each step with its status and message, in [`UploadStep::ALL`] order.
    pub steps: Vec<UploadStepState>,
    /// The key id the package's sealed files share, when they do.
    pub key_id: Option<String>,
    /// Whether every step passed.
    pub passed: bool,
}

fn list_some(items: &[String]) -> String {
    let mut s = items
        .iter()
        .take(5)
        .map(|p| format!("{p:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > 5 {
        s.push_str(&format!(" and {} more", items.len() - 5));
    }
    s
}

impl Inspection {
    /// The upload steps, given the project's latest AO WCEK.
    pub fn steps(&self, wcek: Option<&WcekVersion>, at: sealroom_types::Timestamp) -> StepOutcome {
        let step = |step, r: Result<String, String>| {
            let (status, message) = match r {
                Ok(m) => (UploadStepStatus::Passed, m),
                Err(m) => (UploadStepStatus::Failed, m),
            };
            UploadStepState {
                step,
                status,
                message: Some(message),
                at,
            }
        };
        let entry = match (&self.dockerfile, &self.run_sh) {
            (Some(Ok(())), _) => Ok("Dockerfile is present".to_string()),
            (_, Some(Ok(()))) => Ok("run.sh is present (no usable Dockerfile)".to_string()),
            (Some(Err(e)), _) | (None, Some(Err(e))) => Err(e.clone()),
            (None, None) => Err(
                "no Dockerfile or run.sh at the package root (make the archive with `tar -C DIR -cf package.tar .`)"
                    .to_string(),
            ),
        };
        let mut key_id = None;
        let secrets = match &self.manifest {
            None => Err(format!(
                "no {SECRETS_MANIFEST} at the package root: list the sealed files as {{\"files\": [\"path\", ...]}}"
            )),
            Some(Err(e)) => Err(e.clone()),
            Some(Ok(list)) => {
                let missing: Vec<String> = list
                    .iter()
                    .filter(|p| !self.files.contains_key(*p))
                    .cloned()
                    .collect();
                let plaintext: Vec<String> = list
                    .iter()
                    .filter(|p| matches!(self.files.get(*p), Some(Err(_))))
                    .cloned()
                    .collect();
                let mut ids: Vec<&String> = list
                    .iter()
                    .filter_map(|p| self.files.get(p).and_then(|r| r.as_ref().ok()))
                    .collect();
                ids.sort();
                ids.dedup();
                if !missing.is_empty() {
                    Err(format!(
                        "{SECRETS_MANIFEST} lists files that are not in the package: {}",
                        list_some(&missing)
                    ))
                } else if !plaintext.is_empty() {
                    Err(format!(
                        "{SECRETS_MANIFEST} lists files that are not Sealroom sealed files: {}",
                        list_some(&plaintext)
                    ))
                } else if ids.len() > 1 {
                    Err(format!(
                        "the sealed files are sealed under {} different keys; seal them all with the project's CEK",
                        ids.len()
                    ))
                } else {
                    key_id = ids.first().map(|s| s.to_string());
                    Ok(format!(
                        "{SECRETS_MANIFEST} is present and lists {} sealed file(s)",
                        list.len()
                    ))
                }
            }
        };
        let wcek_step = match wcek {
            None => Err(
                "the algorithm owner has not uploaded a WCEK for this project".to_string(),
            ),
            Some(w) => match (&key_id, &w.cek_key_id) {
                (None, _) => Ok(format!("WCEK version {} is present", w.version)),
                (Some(_), None) => Err(format!(
                    "WCEK version {} does not record its CEK's key id; upload it again",
                    w.version
                )),
                (Some(k), Some(wk)) if k.eq_ignore_ascii_case(wk) => Ok(format!(
                    "WCEK version {} is present and wraps the key the files are sealed with",
                    w.version
                )),
                (Some(k), Some(wk)) => Err(format!(
                    "the files are sealed under key {k}, but the latest WCEK (version {}) wraps key {wk}",
                    w.version
                )),
            },
        };
        let all = entry.is_ok() && secrets.is_ok() && wcek_step.is_ok();
        let summary = if all {
            Ok("all required files are present and valid".to_string())
        } else {
            Err("file validation failed; see the steps above".to_string())
        };
        StepOutcome {
            steps: vec![
                step(UploadStep::DockerfilePresent, entry),
                step(UploadStep::SecretsManifestPresent, secrets),
                step(UploadStep::WcekPresent, wcek_step),
                step(UploadStep::FileValidationSucceeded, summary),
            ],
            key_id,
            passed: all,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (p, d) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(d.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, p, *d).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn raw_entry(name: &[u8], kind: u8, data: &[u8]) -> Vec<u8> {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.as_old_mut().linkflag[0] = kind;
        h.set_cksum();
        let mut out = h.as_bytes().to_vec();
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out
    }

    #[test]
    fn paths() {
        assert_eq!(normalize_path(b"./a/./b").unwrap(), Some("a/b".into()));
        assert_eq!(normalize_path(b"./").unwrap(), None);
        assert!(normalize_path(b"/etc/passwd").is_err());
        assert!(normalize_path(b"a/../../b").is_err());
        assert!(normalize_path(&[b'a'; 1025]).is_err());
        assert!(normalize_path(b"a\\b").is_err());
    }

    #[test]
    fn plain_package_without_manifest() {
        let t = tar_of(&[("./Dockerfile", b"FROM x\n"), ("./main.py", b"print(1)")]);
        let i = inspect(&t[..]).unwrap();
        assert_eq!(i.dockerfile, Some(Ok(())));
        assert!(i.manifest.is_none());
        let o = i.steps(None, sealroom_types::Timestamp::now());
        assert!(!o.passed);
        assert_eq!(o.steps[0].status, UploadStepStatus::Passed);
        assert_eq!(o.steps[1].status, UploadStepStatus::Failed);
        assert_eq!(o.steps[2].status, UploadStepStatus::Failed);
    }

    #[test]
    fn refusals() {
        let mut t = raw_entry(b"../evil", b'0', b"x");
        t.extend_from_slice(&[0; 1024]);
        assert!(inspect(&t[..]).unwrap_err().0.contains(".."));
        let mut t = raw_entry(b"link", b'2', b"");
        t.extend_from_slice(&[0; 1024]);
        assert!(inspect(&t[..]).unwrap_err().0.contains("link"));
        let t = tar_of(&[("a", b"1"), ("./a", b"2")]);
        assert!(inspect(&t[..]).unwrap_err().0.contains("twice"));
        assert!(inspect(&b"%PDF-1.7 not a tar"[..]).is_err());
        assert!(inspect(&[0u8; 1024][..]).is_err());
        let mut t = raw_entry(b"pax", b'x', b"11 size=99\n");
        t.extend(raw_entry(b"a", b'0', b"x"));
        t.extend_from_slice(&[0; 1024]);
        assert!(inspect(&t[..]).unwrap_err().0.contains("PAX"));
    }

    #[test]
    fn pax_and_long_names() {
        let long = "d/".repeat(60) + "file.bin";
        let t = tar_of(&[(&long, b"x"), ("run.sh", b"echo")]);
        let i = inspect(&t[..]).unwrap();
        assert!(i.files.contains_key(&long));
        assert_eq!(i.run_sh, Some(Ok(())));
        let rec = b"16 path=p/q.txt\n";
        let mut t = raw_entry(b"PaxHeader", b'x', rec);
        t.extend(raw_entry(b"short", b'0', b"x"));
        t.extend_from_slice(&[0; 1024]);
        let i = inspect(&t[..]).unwrap();
        assert!(i.files.contains_key("p/q.txt"), "{:?}", i.files);
    }
}
