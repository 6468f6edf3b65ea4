//! Where the Enclave API's files come from: a sealed dataset tree (a real run: decrypted on the
//! fly, only the segments a request touches) or a plaintext directory (`sealroom local-run`).

use std::fs::File;
use std::io::Read;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use sealroom_envelope::access::SealedFile;
use sealroom_envelope::dir::{read_manifest, MANIFEST_NAME};
use sealroom_envelope::Cek;

/// One file of the dataset as the Enclave API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    /// Path relative to the dataset root, `/`-separated: what `filepath=` takes.
    pub name: String,
    /// Plaintext size in bytes.
    pub size: u64,
    /// Modification time (RFC 3339), as EscrowAI's `uploadDate`.
    pub upload_date: String,
}

/// Errors reading the dataset.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// No such file in the dataset.
    #[error("no file {0:?} in the dataset")]
    NotFound(String),
    /// The sealed data failed verification or could not be read.
    #[error(transparent)]
    Envelope(#[from] sealroom_envelope::Error),
    /// A plaintext file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A readable range of one file.
pub type RangeRead = Box<dyn Read + Send>;

/// The dataset behind `/api/v1/data/*`.
pub trait DataSource: Send + Sync + std::fmt::Debug {
    /// Every file, sorted by name.
    fn list(&self) -> Vec<DataFile>;
    /// The plaintext size of `name`.
    fn size(&self, name: &str) -> Result<u64, DataError>;
    /// A reader over `range` of `name`'s plaintext (clamped to the file).
    fn open(&self, name: &str, range: Range<u64>) -> Result<RangeRead, DataError>;
}

/// A dataset sealed with `sealroom encrypt DIR`: verified against its manifest when opened.
#[derive(Debug)]
pub struct SealedDataset {
    root: PathBuf,
    cek: Cek,
    files: Vec<DataFile>,
}

impl SealedDataset {
    /// Opens a sealed tree: reads and checks its manifest with `cek`.
    pub fn open(root: &Path, cek: Cek) -> Result<Self, DataError> {
        let manifest = read_manifest(root, &cek)?;
        let files = manifest
            .files
            .iter()
            .map(|f| DataFile {
                name: f.path.clone(),
                size: f.size,
                upload_date: modified(&root.join(&f.path)),
            })
            .collect();
        Ok(SealedDataset {
            root: root.to_path_buf(),
            cek,
            files,
        })
    }
}

impl DataSource for SealedDataset {
    fn list(&self) -> Vec<DataFile> {
        self.files.clone()
    }

    fn size(&self, name: &str) -> Result<u64, DataError> {
        self.files
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.size)
            .ok_or_else(|| DataError::NotFound(name.to_owned()))
    }

    fn open(&self, name: &str, range: Range<u64>) -> Result<RangeRead, DataError> {
        let entry = self
            .files
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| DataError::NotFound(name.to_owned()))?;
        let path = self.root.join(&entry.name);
        let file = File::open(&path).map_err(|source| DataError::Io {
            path: entry.name.clone(),
            source,
        })?;
        let sealed = SealedFile::open(file, &self.cek)?;
        if sealed.len() != entry.size {
            return Err(DataError::Envelope(sealroom_envelope::Error::Tampered {
                reason: format!("{} does not match the manifest's size", entry.name),
            }));
        }
        Ok(Box::new(OwnedRange::new(Arc::new(sealed), range)))
    }
}

/// A range reader that owns its `SealedFile`.
struct OwnedRange {
    file: Arc<SealedFile>,
    pos: u64,
    end: u64,
}

impl OwnedRange {
    fn new(file: Arc<SealedFile>, range: Range<u64>) -> Self {
        let end = range.end.min(file.len());
        OwnedRange {
            pos: range.start.min(end),
            end,
            file,
        }
    }
}

impl Read for OwnedRange {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.end {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.end - self.pos) as usize;
        let n = self
            .file
            .read_at(self.pos, &mut buf[..want])
            .map_err(std::io::Error::other)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// A plaintext directory, for `sealroom local-run` (no keys).
#[derive(Debug)]
pub struct PlainDataset {
    root: PathBuf,
    files: Vec<DataFile>,
}

impl PlainDataset {
    /// Lists the regular files under `root` (symbolic links are not followed).
    pub fn open(root: &Path) -> Result<Self, DataError> {
        let mut files = Vec::new();
        walk(root, root, &mut files).map_err(|source| DataError::Io {
            path: root.display().to_string(),
            source,
        })?;
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(PlainDataset {
            root: root.to_path_buf(),
            files,
        })
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<DataFile>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let path = entry.path();
        if kind.is_dir() {
            walk(root, &path, out)?;
        } else if kind.is_file() {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let name: Vec<String> = rel
                .components()
                .filter_map(|c| match c {
                    Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                    _ => None,
                })
                .collect();
            let name = name.join("/");
            if name == MANIFEST_NAME {
                continue;
            }
            out.push(DataFile {
                size: entry.metadata()?.len(),
                upload_date: modified(&path),
                name,
            });
        }
    }
    Ok(())
}

impl DataSource for PlainDataset {
    fn list(&self) -> Vec<DataFile> {
        self.files.clone()
    }

    fn size(&self, name: &str) -> Result<u64, DataError> {
        self.files
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.size)
            .ok_or_else(|| DataError::NotFound(name.to_owned()))
    }

    fn open(&self, name: &str, range: Range<u64>) -> Result<RangeRead, DataError> {
        use std::io::{Seek, SeekFrom};
        let entry = self
            .files
            .iter()
            .find(|f| f.name == name)
            .ok_or_else(|| DataError::NotFound(name.to_owned()))?;
        let io = |source| DataError::Io {
            path: entry.name.clone(),
            source,
        };
        let mut file = File::open(self.root.join(&entry.name)).map_err(io)?;
        let end = range.end.min(entry.size);
        let start = range.start.min(end);
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        Ok(Box::new(file.take(end - start)))
    }
}

/// A file's modification time as RFC 3339 UTC, or the epoch if unknown.
fn modified(path: &Path) -> String {
    let secs = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, Howard Hinnant).
pub(crate) fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
