//! `sealroom import fernet|gpg`: decrypt peers' encrypted artifacts (Fernet tokens, OpenPGP
//! symmetric files) as a stream, to a plaintext file or straight into a sealed file.
//!
//! The output is written to a temporary file beside OUT and renamed into place only after the
//! input's authentication (Fernet's HMAC, OpenPGP's MDC) verified: a wrong key or passphrase, a
//! modified or truncated input leaves no output file.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};
use sealroom_envelope::atomic::AtomicFile;
use sealroom_envelope::import::fernet::{self, FernetKey};
use sealroom_envelope::import::openpgp;
use sealroom_envelope::import::{ImportError, Limits};
use sealroom_envelope::stream::{Progress, SealWriter};
use sealroom_envelope::Cek;
use zeroize::Zeroizing;

use crate::progress::Bar;

/// Largest passphrase file read (only its first line is used).
const MAX_PASSPHRASE_FILE: u64 = 64 * 1024;
const BUF: usize = 256 * 1024;

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Decrypt a Fernet token (Python `cryptography.fernet`, as the Rhino example and MedPerf's
    /// older script make them) into OUT, or seal it with --cek.
    Fernet(FernetArgs),
    /// Decrypt an OpenPGP symmetric file (`gpg --symmetric`, AES, compressed or not, binary or
    /// ASCII armor) into OUT, or seal it with --cek.
    Gpg(GpgArgs),
}

#[derive(Debug, Args)]
pub struct FernetArgs {
    /// The Fernet key file: URL-safe base64 of 32 bytes, as `Fernet.generate_key()` writes it.
    #[arg(long, value_name = "KEYFILE")]
    key: PathBuf,
    /// The token file.
    #[arg(value_name = "IN")]
    input: PathBuf,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct GpgArgs {
    /// File whose first line is the passphrase (a trailing newline is not part of it).
    #[arg(long, value_name = "FILE")]
    passphrase_file: PathBuf,
    /// The OpenPGP file (`.gpg` or ASCII-armored `.asc`).
    #[arg(value_name = "IN")]
    input: PathBuf,
    /// Refuse plaintext larger than this (bytes; K, M, G, T suffixes are powers of 1024).
    #[arg(long, value_name = "SIZE", default_value = "1T", value_parser = parse_size)]
    max_output: u64,
    /// Refuse plaintext more than this many times the input's size once past 64 MiB
    /// (a compression bomb guard); 0 turns the check off.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_ratio)]
    max_ratio: u64,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Where to write the plaintext (mode 0600), or the sealed file with --cek.
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,
    /// Seal the plaintext with this CEK instead of writing it in the clear: the plaintext never
    /// touches the disk.
    #[arg(long, value_name = "CEK")]
    cek: Option<PathBuf>,
    /// Replace OUT if it exists.
    #[arg(long)]
    force: bool,
    /// Print what was imported as JSON on standard output.
    #[arg(long)]
    json: bool,
}

pub fn run(command: ImportCommand) -> anyhow::Result<ExitCode> {
    match command {
        ImportCommand::Fernet(args) => {
            let key = FernetKey::read_file(&args.key).map_err(envelope_error)?;
            let (summary, written) = import(&args.input, &args.out, |input, output| {
                let s = fernet::decrypt(&key, input, output)?;
                Ok((
                    serde_json::json!({
                        "format": "fernet",
                        "timestamp": s.timestamp,
                        "token_bytes": s.token_len,
                    }),
                    s.plaintext_len,
                ))
            })?;
            report(&args.input, &args.out, summary, written)
        }
        ImportCommand::Gpg(args) => {
            let passphrase = read_passphrase(&args.passphrase_file)?;
            let limits = Limits {
                max_output: args.max_output,
                max_ratio: args.max_ratio,
                ..Limits::default()
            };
            let (summary, written) = import(&args.input, &args.out, |input, output| {
                let s = openpgp::decrypt(&passphrase, input, output, &limits)?;
                Ok((
                    serde_json::json!({
                        "format": "openpgp",
                        "cipher": s.cipher.name(),
                        "compression": s.compression.map(|c| format!("{c:?}").to_lowercase()),
                        "armored": s.armored,
                        "file_name": String::from_utf8_lossy(&s.file_name),
                        "input_bytes": s.input_len,
                    }),
                    s.plaintext_len,
                ))
            })?;
            report(&args.input, &args.out, summary, written)
        }
    }
}

fn envelope_error(e: ImportError) -> anyhow::Error {
    anyhow::Error::new(sealroom_envelope::Error::Import(e))
}

/// Reads the passphrase: the file's first line, without its newline.
fn read_passphrase(path: &Path) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let file = File::open(path)
        .with_context(|| format!("cannot open the passphrase file {}", path.display()))?;
    let mut data = Zeroizing::new(Vec::new());
    file.take(MAX_PASSPHRASE_FILE)
        .read_to_end(&mut data)
        .with_context(|| format!("cannot read the passphrase file {}", path.display()))?;
    // As `gpg --passphrase-file` reads it: up to the first newline, a '\r' before it kept.
    let end = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    Ok(Zeroizing::new(data[..end].to_vec()))
}

/// Opens IN, prepares OUT's temporary file, runs `decrypt` into it (sealing with the CEK if one
/// was given) and moves it into place only on success.
fn import(
    input: &Path,
    out: &OutputArgs,
    decrypt: impl FnOnce(&mut dyn Read, &mut dyn Write) -> Result<(serde_json::Value, u64), ImportError>,
) -> anyhow::Result<(serde_json::Value, u64)> {
    let cek = match &out.cek {
        Some(path) => Some(Cek::read_file(path)?),
        None => None,
    };
    let file = File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {}", input.display()))?;
    if meta.is_dir() {
        anyhow::bail!(sealroom_envelope::Error::Usage(format!(
            "{} is a directory; import reads one encrypted file",
            input.display()
        )));
    }
    let atomic = AtomicFile::create(&out.output, out.force)?;
    atomic
        .file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .context("cannot restrict the output file's permissions")?;

    let bar = Bar::bytes(meta.len(), "importing");
    let mut reader = BufReader::with_capacity(
        BUF,
        ProgressReader {
            inner: file,
            bar: &bar,
        },
    );
    let result = write_output(&atomic, cek.as_ref(), &out.output, |output| {
        decrypt(&mut reader, output).map_err(envelope_error)
    });
    bar.finish();
    let result = result?;
    atomic.commit()?;
    Ok(result)
}

/// Runs `fill` on the temporary output, plain or through a sealer, and syncs it.
fn write_output<T>(
    atomic: &AtomicFile,
    cek: Option<&Cek>,
    dest: &Path,
    fill: impl FnOnce(&mut dyn Write) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let result = match cek {
        None => {
            let mut writer = BufWriter::with_capacity(BUF, atomic.file());
            let result = fill(&mut writer)?;
            writer
                .flush()
                .with_context(|| format!("cannot write {}", dest.display()))?;
            result
        }
        Some(cek) => {
            let mut sealer = SealWriter::new(atomic.clone_file()?, cek)?;
            let result = fill(&mut sealer)?;
            sealer.finish()?;
            result
        }
    };
    atomic
        .file()
        .sync_all()
        .with_context(|| format!("cannot write {}", dest.display()))?;
    Ok(result)
}

/// The input, advancing the progress bar as it is read.
struct ProgressReader<'b> {
    inner: File,
    bar: &'b Bar,
}

impl Read for ProgressReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.advance(n as u64);
        Ok(n)
    }
}

fn report(
    input: &Path,
    out: &OutputArgs,
    mut summary: serde_json::Value,
    written: u64,
) -> anyhow::Result<ExitCode> {
    let sealed = out.cek.is_some();
    if out.json {
        if let Some(map) = summary.as_object_mut() {
            map.insert("input".into(), input.display().to_string().into());
            map.insert("output".into(), out.output.display().to_string().into());
            map.insert("plaintext_bytes".into(), written.into());
            map.insert("sealed".into(), sealed.into());
        }
        println!("{summary}");
    } else {
        eprintln!(
            "imported {} ({written} bytes of plaintext) to {}{}",
            input.display(),
            out.output.display(),
            if sealed { ", sealed with the CEK" } else { "" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Parses `1234`, `64K`, `512M`, `2G`, `1T` (powers of 1024).
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("unknown size suffix '{c}' (use K, M, G or T)")),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a size (e.g. 4096, 512M, 1T)"))?;
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("'{text}' is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("1t"), Ok(1 << 40));
        assert!(parse_size("1X").is_err());
        assert!(parse_size("lots").is_err());
    }
}
