//! `sealroom encrypt` and `sealroom decrypt`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use sealroom_envelope::{dir, Cek, Error};
use serde_json::json;

use crate::progress::Bar;

#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// The CEK file: raw 32 bytes or their base64 (`sealroom keys cek` makes one).
    #[arg(long)]
    cek: PathBuf,
    /// A file, or a directory (sealed file by file, with a sealed manifest).
    input: PathBuf,
    /// The sealed file or directory to create. Written beside, renamed only on success.
    #[arg(short, long)]
    output: PathBuf,
    /// Replace OUTPUT if it is an existing file (directories are never replaced).
    #[arg(long)]
    force: bool,
    /// Print a JSON summary.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct DecryptArgs {
    /// The CEK file the input was sealed with.
    #[arg(long)]
    cek: PathBuf,
    /// A sealed file, or a sealed directory made by `sealroom encrypt`.
    input: PathBuf,
    /// The plaintext file or directory to create (mode 0600 files). Written beside, renamed only
    /// after every segment verified.
    #[arg(short, long)]
    output: PathBuf,
    /// Replace OUTPUT if it is an existing file (directories are never replaced).
    #[arg(long)]
    force: bool,
    /// Print a JSON summary.
    #[arg(long)]
    json: bool,
}

fn check_distinct(input: &std::path::Path, output: &std::path::Path) -> Result<(), Error> {
    if let (Ok(a), Ok(b)) = (input.canonicalize(), output.canonicalize()) {
        if a == b {
            return Err(Error::Usage("the output must differ from the input".into()));
        }
    }
    Ok(())
}

pub fn encrypt(args: EncryptArgs) -> anyhow::Result<ExitCode> {
    let cek = Cek::read_file(&args.cek)?;
    check_distinct(&args.input, &args.output)?;
    let total = dir::input_size(&args.input)?;
    let bar = Bar::bytes(total, "sealing");
    let (files, bytes) = if args.input.is_dir() {
        let manifest = dir::seal_tree(&args.input, &args.output, &cek, &bar)?;
        (
            manifest.files.len(),
            manifest.files.iter().map(|f| f.size).sum(),
        )
    } else {
        let summary = dir::seal_file(&args.input, &args.output, &cek, args.force, &bar)?;
        (1, summary.plaintext_len)
    };
    bar.finish();
    if args.json {
        println!(
            "{}",
            json!({"output": args.output, "files": files, "bytes": bytes, "key_id": cek.key_id().to_string()})
        );
    } else {
        eprintln!(
            "sealed {files} file(s), {bytes} bytes, into {} with key id {}",
            args.output.display(),
            cek.key_id()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn decrypt(args: DecryptArgs) -> anyhow::Result<ExitCode> {
    let cek = Cek::read_file(&args.cek)?;
    check_distinct(&args.input, &args.output)?;
    let total = dir::input_size(&args.input)?;
    let bar = Bar::bytes(total, "unsealing");
    let (files, bytes) = if args.input.is_dir() {
        let manifest = dir::unseal_tree(&args.input, &args.output, &cek, &bar)?;
        (
            manifest.files.len(),
            manifest.files.iter().map(|f| f.size).sum(),
        )
    } else {
        let summary = dir::unseal_file(&args.input, &args.output, &cek, args.force, &bar)?;
        (1, summary.plaintext_len)
    };
    bar.finish();
    if args.json {
        println!(
            "{}",
            json!({"output": args.output, "files": files, "bytes": bytes})
        );
    } else {
        eprintln!(
            "unsealed and verified {files} file(s), {bytes} bytes, into {}",
            args.output.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
