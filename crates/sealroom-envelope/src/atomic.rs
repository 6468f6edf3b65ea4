//! Outputs that appear only on success: a temporary file or directory beside the destination,
//! renamed into place by `commit`. Dropping one without committing removes it, so a failure
//! (wrong key, tampered input, a full disk, Ctrl-C unwinding) leaves no partial output.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

fn parent_and_name(dest: &Path) -> Result<(PathBuf, String)> {
    let name = dest
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Usage(format!("{} is not a usable output path", dest.display())))?
        .to_owned();
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(Error::Usage(format!(
            "the output's directory {} does not exist",
            parent.display()
        )));
    }
    Ok((parent, name))
}

fn refuse_existing(dest: &Path, overwrite: bool) -> Result<()> {
    match fs::symlink_metadata(dest) {
        Ok(meta) if meta.is_dir() => Err(Error::Usage(format!(
            "{} already exists and is a directory",
            dest.display()
        ))),
        Ok(_) if !overwrite => Err(Error::Usage(format!(
            "{} already exists (use --force to replace it)",
            dest.display()
        ))),
        _ => Ok(()),
    }
}

/// A temporary file (mode 0600) beside its destination.
#[derive(Debug)]
pub struct AtomicFile {
    tmp: tempfile::NamedTempFile,
    dest: PathBuf,
    overwrite: bool,
}

impl AtomicFile {
    /// Prepares to write `dest`. Fails now if `dest` exists and `overwrite` is false.
    pub fn create(dest: &Path, overwrite: bool) -> Result<Self> {
        refuse_existing(dest, overwrite)?;
        let (parent, name) = parent_and_name(dest)?;
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".sealroom-tmp")
            .tempfile_in(&parent)
            .map_err(|e| {
                Error::io(
                    format!("cannot create a temporary file in {}", parent.display()),
                    e,
                )
            })?;
        Ok(AtomicFile {
            tmp,
            dest: dest.to_path_buf(),
            overwrite,
        })
    }

    /// The temporary file.
    pub fn file(&self) -> &File {
        self.tmp.as_file()
    }

    /// A second handle to the temporary file (for writer threads).
    pub fn clone_file(&self) -> Result<File> {
        self.tmp
            .as_file()
            .try_clone()
            .map_err(|e| Error::io("cannot duplicate the output file handle", e))
    }

    /// Renames the temporary file to the destination.
    pub fn commit(self) -> Result<()> {
        let dest = self.dest.clone();
        let done = if self.overwrite {
            self.tmp.persist(&dest).map(|_| ())
        } else {
            self.tmp.persist_noclobber(&dest).map(|_| ())
        };
        done.map_err(|e| {
            Error::io(
                format!("cannot move the output into place at {}", dest.display()),
                e.error,
            )
        })
    }
}

/// A temporary directory beside its destination, which must not exist.
#[derive(Debug)]
pub struct AtomicDir {
    tmp: tempfile::TempDir,
    dest: PathBuf,
}

impl AtomicDir {
    /// Prepares to create directory `dest`.
    pub fn create(dest: &Path) -> Result<Self> {
        if fs::symlink_metadata(dest).is_ok() {
            return Err(Error::Usage(format!(
                "{} already exists; directory outputs are never merged or replaced",
                dest.display()
            )));
        }
        let (parent, name) = parent_and_name(dest)?;
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".sealroom-tmp")
            .tempdir_in(&parent)
            .map_err(|e| {
                Error::io(
                    format!(
                        "cannot create a temporary directory in {}",
                        parent.display()
                    ),
                    e,
                )
            })?;
        Ok(AtomicDir {
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    /// The temporary directory to fill.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// Renames the temporary directory to the destination.
    pub fn commit(self) -> Result<()> {
        let path = self.tmp.keep();
        fs::rename(&path, &self.dest).map_err(|e| {
            let _ = fs::remove_dir_all(&path);
            Error::io(
                format!(
                    "cannot move the output into place at {}",
                    self.dest.display()
                ),
                e,
            )
        })
    }
}
