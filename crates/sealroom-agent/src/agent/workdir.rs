//! The agent's work directory: where every run's files live while it runs (the package with
//! its decrypted secret files, the sealed dataset, the sealed model, the Enclave API's socket,
//! the sandbox's `/workspace`), one `run-<run id>-<random>` directory per run, on memory-backed
//! storage (`/dev/shm`) by default.
//!
//! A run's directory is removed when the run ends, whatever the ending. An agent that is killed
//! (`SIGKILL`, a power cut) cannot do that: its runs' directories stay, in memory, until the next
//! start of an agent on the same work directory, which removes every `run-*` entry before it
//! claims anything. A lock file (`agent.lock`, `flock`) keeps two agents from sharing one work
//! directory, so the one that starts never wipes the runs of one that is still alive.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// The lock file's name.
const LOCK_FILE: &str = "agent.lock";
/// The prefix of a run's directory.
pub(crate) const RUN_PREFIX: &str = "run-";

/// The default work directory of an agent whose state is in `state_dir`:
/// `/dev/shm/sealroom-agent-<16 hex digits of SHA-256 of the state directory's absolute path>`
/// (the system's temporary directory where there is no `/dev/shm`).
pub fn default_work_dir(state_dir: &Path) -> PathBuf {
    let absolute = std::path::absolute(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        absolute.as_os_str().as_encoded_bytes(),
    );
    let tag = super::hex(&digest.as_ref()[..8]);
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    base.join(format!("sealroom-agent-{tag}"))
}

/// An open, locked work directory. The lock is held while this lives.
#[derive(Debug)]
pub struct WorkDir {
    path: PathBuf,
    _lock: File,
}

/// What [`WorkDir::open`] found and removed.
#[derive(Debug)]
pub struct Opened {
    /// The work directory.
    pub dir: WorkDir,
    /// The stale run directories it removed (left by an agent that did not stop cleanly).
    pub wiped: Vec<String>,
    /// The type of the file system it is on (`tmpfs`, ...), where /proc/mounts tells.
    pub fs_type: Option<String>,
}

impl Opened {
    /// Whether it is on memory-backed storage (`tmpfs`, `ramfs`); `None` when unknown.
    pub fn memory_backed(&self) -> Option<bool> {
        self.fs_type
            .as_deref()
            .map(|t| matches!(t, "tmpfs" | "ramfs"))
    }
}

/// The type of the file system that holds `path`: the longest mount point of /proc/mounts that
/// contains it.
fn fs_type(path: &Path) -> Option<String> {
    let path = std::fs::canonicalize(path).ok()?;
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, at, ty) = (f.next()?, f.next()?, f.next()?);
            // Mount points with spaces are octal-escaped (`\040`); such a one simply never
            // matches.
            path.starts_with(at).then(|| (at.len(), ty.to_owned()))
        })
        .max()
        .map(|(_, ty)| ty)
}

impl WorkDir {
    /// Creates (mode 0700) or opens the work directory, takes its lock, and removes every stale
    /// `run-*` entry in it.
    pub fn open(path: &Path) -> Result<Opened, String> {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|e| format!("cannot create the work directory {}: {e}", path.display()))?;
        // In a shared directory such as /dev/shm someone else could have made it first: it must
        // be a real directory of this user, writable by no one else.
        let meta = std::fs::symlink_metadata(path)
            .map_err(|e| format!("cannot read the work directory {}: {e}", path.display()))?;
        if !meta.file_type().is_dir() {
            return Err(format!(
                "the work directory {} is not a directory (a symbolic link?)",
                path.display()
            ));
        }
        if let Ok(me) = std::fs::metadata("/proc/self") {
            if meta.uid() != me.uid() {
                return Err(format!(
                    "the work directory {} belongs to uid {}, not to this agent's user (uid {})",
                    path.display(),
                    meta.uid(),
                    me.uid()
                ));
            }
        }
        if meta.mode() & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(
                |e| format!("cannot restrict the work directory {}: {e}", path.display()),
            )?;
        }
        let lock_path = path.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(format!(
                    "another agent is using the work directory {} (give each agent its own \
                     --work-dir)",
                    path.display()
                ))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", lock_path.display()))
            }
        }
        let mut wiped = Vec::new();
        let entries = std::fs::read_dir(path)
            .map_err(|e| format!("cannot read the work directory {}: {e}", path.display()))?;
        for entry in entries {
            let entry = entry
                .map_err(|e| format!("cannot read the work directory {}: {e}", path.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with(RUN_PREFIX) {
                continue;
            }
            let p = entry.path();
            let removed = match entry.file_type() {
                Ok(t) if t.is_dir() => std::fs::remove_dir_all(&p),
                _ => std::fs::remove_file(&p),
            };
            removed.map_err(|e| {
                format!(
                    "cannot remove the stale run directory {} (it may hold decrypted files): {e}",
                    p.display()
                )
            })?;
            wiped.push(name);
        }
        wiped.sort();
        Ok(Opened {
            dir: WorkDir {
                path: path.to_path_buf(),
                _lock: lock,
            },
            wiped,
            fs_type: fs_type(path),
        })
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkDir {
    /// An agent that stops cleanly leaves no empty work directory behind: the lock file goes,
    /// then the directory if nothing else is in it.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path.join(LOCK_FILE));
        let _ = std::fs::remove_dir(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_runs_are_wiped_at_start_and_a_second_agent_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let work = t.path().join("work");
        let first = WorkDir::open(&work).unwrap();
        assert!(first.wiped.is_empty());
        // What a killed agent leaves behind.
        std::fs::create_dir_all(work.join("run-r1-abc/package")).unwrap();
        std::fs::write(work.join("run-r1-abc/package/weights.bin"), b"plaintext").unwrap();
        std::fs::write(work.join("keep.txt"), b"not a run").unwrap();
        let second = WorkDir::open(&work).unwrap_err();
        assert!(second.contains("another agent"), "{second}");
        assert!(work.join("run-r1-abc").exists());
        drop(first);
        let again = WorkDir::open(&work).unwrap();
        assert_eq!(again.wiped, ["run-r1-abc"]);
        assert!(!work.join("run-r1-abc").exists());
        assert!(work.join("keep.txt").exists());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&work).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        // A clean stop leaves what is not the agent's, and an empty work directory not at all.
        drop(again);
        assert!(work.join("keep.txt").exists());
        assert!(!work.join(LOCK_FILE).exists());
        std::fs::remove_file(work.join("keep.txt")).unwrap();
        let last = WorkDir::open(&work).unwrap();
        drop(last);
        assert!(!work.exists());
    }

    #[test]
    fn a_symbolic_link_is_not_a_work_directory() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(t.path().join("elsewhere"), t.path().join("work")).unwrap();
        let e = WorkDir::open(&t.path().join("work")).unwrap_err();
        assert!(e.contains("not a directory"), "{e}");
    }

    #[test]
    fn the_default_is_on_memory_backed_storage_and_differs_per_state_dir() {
        let a = default_work_dir(Path::new("/var/lib/agent-a"));
        let b = default_work_dir(Path::new("/var/lib/agent-b"));
        assert_ne!(a, b);
        assert_eq!(a, default_work_dir(Path::new("/var/lib/agent-a")));
        if Path::new("/dev/shm").is_dir() {
            assert!(a.starts_with("/dev/shm"), "{}", a.display());
            let t = tempfile::Builder::new()
                .prefix("sealroom-agent-test-")
                .tempdir_in("/dev/shm")
                .unwrap();
            let opened = WorkDir::open(&t.path().join("work")).unwrap();
            assert_eq!(opened.memory_backed(), Some(true), "{:?}", opened.fs_type);
        }
        assert!(a
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("sealroom-agent-"));
    }
}
