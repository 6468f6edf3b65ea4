//! `sealroom keys ...`: CEKs, KEK pairs, wrapping and unwrapping.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use sealroom_envelope::kek::{generate_kek_pair, KekPrivate, KekPublic};
use sealroom_envelope::key::{fresh_name, write_secret_file};
use sealroom_envelope::{Cek, Error};
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Make a CEK: 32 random bytes from the OS CSPRNG, written as `cek_<random>.key` (mode 0600).
    Cek {
        /// Where to write it: a directory (the file is named `cek_<random>.key` inside) or a file
        /// path that does not exist yet. Default: the current directory.
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        out: Output,
    },
    /// Make an RSA-4096 KEK pair for tests and offline use (the control plane makes the real ones).
    Kek {
        /// The private key, PKCS#8 PEM (mode 0600). Must not exist yet.
        #[arg(long)]
        private: PathBuf,
        /// The public key (the KEK), SPKI DER. Must not exist yet.
        #[arg(long)]
        public: PathBuf,
        #[command(flatten)]
        out: Output,
    },
    /// Wrap a CEK to a KEK: RSA-OAEP with SHA-256 and MGF1-SHA-256, as Web Crypto's RSA-OAEP.
    Wrap {
        /// The KEK: an RSA public key, SPKI DER (or PEM).
        #[arg(long)]
        kek: PathBuf,
        /// The CEK file: raw 32 bytes or their base64.
        #[arg(long)]
        cek: PathBuf,
        /// Where to write the WCEK: a directory (named `wcek_<random>.key.bkenc` inside) or a new
        /// file path. Default: the current directory.
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        out: Output,
    },
    /// Unwrap a WCEK with the KEK's private half (for tests and offline use).
    Unwrap {
        /// The private KEK, PKCS#8 PEM or DER.
        #[arg(long)]
        private: PathBuf,
        /// The WCEK file.
        wcek: PathBuf,
        /// Where to write the CEK (raw 32 bytes, mode 0600). Must not exist yet.
        #[arg(short, long)]
        output: PathBuf,
        #[command(flatten)]
        out: Output,
    },
    /// Print a CEK's key id (what sealed files and "wrong key" errors name).
    Id {
        /// The CEK file.
        cek: PathBuf,
        #[command(flatten)]
        out: Output,
    },
}

/// Output format.
#[derive(Debug, Args)]
pub struct Output {
    /// Print a JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

impl Output {
    fn print(&self, text: String, value: serde_json::Value) {
        if self.json {
            println!("{value}");
        } else {
            println!("{text}");
        }
    }
}

/// A destination that is a directory (make a fresh name inside) or a new file path.
fn destination(output: Option<PathBuf>, prefix: &str, suffix: &str) -> Result<PathBuf, Error> {
    match output {
        None => fresh_name(Path::new("."), prefix, suffix),
        Some(p) if p.is_dir() => fresh_name(&p, prefix, suffix),
        Some(p) => Ok(p),
    }
}

pub fn run(command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Cek { output, out } => {
            let cek = Cek::generate()?;
            let path = destination(output, "cek_", ".key")?;
            cek.write_new_file(&path)?;
            out.print(
                format!("wrote {} (key id {})", path.display(), cek.key_id()),
                json!({"path": path, "key_id": cek.key_id().to_string()}),
            );
        }
        KeysCommand::Kek {
            private,
            public,
            out,
        } => {
            for p in [&private, &public] {
                if p.exists() {
                    anyhow::bail!(Error::Usage(format!("{} already exists", p.display())));
                }
            }
            let pair = generate_kek_pair()?;
            write_secret_file(&private, pair.private_pem.as_bytes())?;
            if let Err(e) = write_public(&public, &pair.public_der) {
                let _ = fs::remove_file(&private);
                return Err(e);
            }
            out.print(
                format!(
                    "wrote {} (private, PKCS#8 PEM) and {} (public KEK, SPKI DER, RSA-4096)",
                    private.display(),
                    public.display()
                ),
                json!({"private": private, "public": public, "bits": 4096}),
            );
        }
        KeysCommand::Wrap {
            kek,
            cek,
            output,
            out,
        } => {
            let kek = KekPublic::read_file(&kek)?;
            let cek = Cek::read_file(&cek)?;
            let wcek = kek.wrap(&cek)?;
            let path = destination(output, "wcek_", ".key.bkenc")?;
            write_public(&path, &wcek)?;
            out.print(
                format!(
                    "wrote {} (CEK key id {} wrapped to an RSA-{} KEK)",
                    path.display(),
                    cek.key_id(),
                    kek.bits()
                ),
                json!({"path": path, "key_id": cek.key_id().to_string(), "kek_bits": kek.bits()}),
            );
        }
        KeysCommand::Unwrap {
            private,
            wcek,
            output,
            out,
        } => {
            let kek = KekPrivate::read_file(&private)?;
            let meta =
                fs::metadata(&wcek).with_context(|| format!("cannot read {}", wcek.display()))?;
            if meta.len() > 64 * 1024 {
                anyhow::bail!(Error::KeyFile {
                    path: wcek,
                    reason: format!("{} bytes is too large for a WCEK", meta.len()),
                });
            }
            let bytes =
                fs::read(&wcek).with_context(|| format!("cannot read {}", wcek.display()))?;
            let cek = kek.unwrap(&bytes).map_err(|e| match e {
                Error::Key(reason) => Error::KeyFile {
                    path: wcek.clone(),
                    reason,
                },
                other => other,
            })?;
            cek.write_new_file(&output)?;
            out.print(
                format!("wrote {} (key id {})", output.display(), cek.key_id()),
                json!({"path": output, "key_id": cek.key_id().to_string()}),
            );
        }
        KeysCommand::Id { cek, out } => {
            let cek = Cek::read_file(&cek)?;
            out.print(
                cek.key_id().to_string(),
                json!({"key_id": cek.key_id().to_string()}),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes a non-secret file that must not exist yet.
fn write_public(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::io(format!("cannot create {}", path.display()), e))?;
    f.write_all(bytes)
        .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))?;
    Ok(())
}
