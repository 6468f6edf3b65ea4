//! The local-files backend: `<root>/<key>`, temporary files in `<root>/.tmp` (no key can start
//! with `.`, so none can collide with it).

use std::io::{ErrorKind, SeekFrom};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use aws_lc_rs::digest;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::{
    BlobEntry, BlobError, BlobKey, BlobMeta, BlobReader, BlobStore, ByteRange, PutOptions, Result,
};

const TMP_DIR: &str = ".tmp";
const CHUNK: usize = 64 * 1024;

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> BlobError + 'a {
    move |source| BlobError::Io {
        op,
        path: path.display().to_string(),
        source,
    }
}

/// Blobs as files under a root directory (by default `<data-dir>/blobs`).
#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
}

/// Removes a temporary file unless disarmed (also when the upload future is dropped).
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl LocalBlobStore {
    /// Opens (creating) a store rooted at `root`, and removes temporary files left by a crash.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let tmp = root.join(TMP_DIR);
        tokio::fs::create_dir_all(&tmp)
            .await
            .map_err(io("create", &tmp))?;
        let mut rd = tokio::fs::read_dir(&tmp).await.map_err(io("read", &tmp))?;
        while let Some(e) = rd.next_entry().await.map_err(io("read", &tmp))? {
            let _ = tokio::fs::remove_file(e.path()).await;
        }
        Ok(LocalBlobStore { root })
    }

    /// The default location under a data directory: `<data-dir>/blobs`.
    pub async fn in_data_dir(data_dir: &Path) -> Result<Self> {
        Self::open(data_dir.join("blobs")).await
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &BlobKey) -> PathBuf {
        self.root.join(key.as_str())
    }

    fn temp_path(&self) -> PathBuf {
        let mut r = [0u8; 16];
        // A failure of the system RNG leaves zeros; create_new below still refuses collisions.
        let _ = aws_lc_rs::rand::fill(&mut r);
        self.root
            .join(TMP_DIR)
            .join(format!("{}.part", hex::encode(r)))
    }
}

async fn sync_dir(dir: &Path) -> Result<()> {
    let d = tokio::fs::File::open(dir).await.map_err(io("open", dir))?;
    d.sync_all().await.map_err(io("sync", dir))
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put(
        &self,
        key: &BlobKey,
        reader: &mut (dyn AsyncRead + Unpin + Send),
        opts: PutOptions,
    ) -> Result<BlobMeta> {
        let dest = self.path(key);
        if !opts.overwrite && tokio::fs::try_exists(&dest).await.unwrap_or(false) {
            return Err(BlobError::AlreadyExists(key.to_string()));
        }
        let tmp = self.temp_path();
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .await
            .map_err(io("create", &tmp))?;
        let guard = TempGuard(Some(tmp.clone()));
        let mut ctx = digest::Context::new(&digest::SHA256);
        let mut buf = vec![0u8; CHUNK];
        let mut size: u64 = 0;
        loop {
            let n = reader
                .read(&mut buf)
                .await
                .map_err(io("read upload for", &dest))?;
            if n == 0 {
                break;
            }
            size += n as u64;
            if let Some(limit) = opts.max_size {
                if size > limit {
                    return Err(BlobError::TooLarge { limit });
                }
            }
            ctx.update(&buf[..n]);
            file.write_all(&buf[..n]).await.map_err(io("write", &tmp))?;
        }
        file.flush().await.map_err(io("write", &tmp))?;
        file.sync_all().await.map_err(io("sync", &tmp))?;
        drop(file);
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(ctx.finish().as_ref());
        if let Some(expected) = opts.expected_sha256 {
            // Not secret: a plain comparison is fine.
            if expected != sha256 {
                return Err(BlobError::Mismatch {
                    expected: hex::encode(expected),
                    actual: hex::encode(sha256),
                });
            }
        }
        let parent = dest.parent().unwrap_or(&self.root).to_path_buf();
        tokio::fs::create_dir_all(&parent)
            .await
            .map_err(io("create", &parent))?;
        if opts.overwrite {
            tokio::fs::rename(&tmp, &dest)
                .await
                .map_err(io("rename into", &dest))?;
        } else {
            // A hard link fails if the destination exists: commit without clobbering.
            match tokio::fs::hard_link(&tmp, &dest).await {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    return Err(BlobError::AlreadyExists(key.to_string()))
                }
                Err(e) => return Err(io("link into", &dest)(e)),
            }
        }
        drop(guard); // removes the temporary name (a no-op after rename)
        sync_dir(&parent).await?;
        Ok(BlobMeta {
            key: key.clone(),
            size,
            sha256,
        })
    }

    async fn get(&self, key: &BlobKey, range: Option<ByteRange>) -> Result<BlobReader> {
        let path = self.path(key);
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(BlobError::NotFound(key.to_string()))
            }
            Err(e) => return Err(io("open", &path)(e)),
        };
        let meta = file.metadata().await.map_err(io("stat", &path))?;
        if !meta.is_file() {
            return Err(BlobError::NotFound(key.to_string()));
        }
        let total = meta.len();
        let (offset, length) = match range {
            None => (0, total),
            Some(r) => r.resolve(total)?,
        };
        if offset > 0 {
            file.seek(SeekFrom::Start(offset))
                .await
                .map_err(io("seek", &path))?;
        }
        Ok(BlobReader {
            total_size: total,
            offset,
            length,
            reader: Box::pin(file.take(length)),
        })
    }

    async fn size(&self, key: &BlobKey) -> Result<u64> {
        let path = self.path(key);
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => Ok(m.len()),
            Ok(_) => Err(BlobError::NotFound(key.to_string())),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(BlobError::NotFound(key.to_string())),
            Err(e) => Err(io("stat", &path)(e)),
        }
    }

    async fn delete(&self, key: &BlobKey) -> Result<bool> {
        let path = self.path(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io("delete", &path)(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<BlobEntry>> {
        // Start at the deepest directory the prefix names, then filter by the full prefix.
        let dir_part = match prefix.rfind('/') {
            Some(i) => &prefix[..i],
            None => "",
        };
        if !dir_part.is_empty() {
            BlobKey::parse(dir_part)?;
        }
        let root = self.root.clone();
        let start = if dir_part.is_empty() {
            root.clone()
        } else {
            root.join(dir_part)
        };
        let prefix = prefix.to_owned();
        let walked = tokio::task::spawn_blocking(move || walk(&root, &start, &prefix))
            .await
            .map_err(|e| BlobError::Io {
                op: "list",
                path: String::new(),
                source: std::io::Error::other(e.to_string()),
            })??;
        Ok(walked)
    }
}

fn walk(root: &Path, start: &Path, prefix: &str) -> Result<Vec<BlobEntry>> {
    let mut out = Vec::new();
    let mut stack = vec![start.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(io("read", &dir)(e)),
        };
        for entry in rd {
            let entry = entry.map_err(io("read", &dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue; // temporary files and anything not made by the store
            }
            let path = entry.path();
            let ft = entry.file_type().map_err(io("stat", &path))?;
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_file() {
                let Ok(rel) = path.strip_prefix(root) else {
                    continue;
                };
                let Some(rel) = rel.to_str() else { continue };
                if !rel.starts_with(prefix) {
                    continue;
                }
                if let Ok(key) = BlobKey::parse(rel) {
                    let size = entry.metadata().map_err(io("stat", &path))?.len();
                    out.push(BlobEntry { key, size });
                }
            }
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}
