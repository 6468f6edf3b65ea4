//! `sealroom`: one binary for every part of Sealroom.
//!
//! Each subcommand lives in its own module under `cmd/`; this file only parses the command line,
//! dispatches, and turns errors into the documented exit codes (`docs/exit-codes.md`).

mod cmd;
mod exit;
mod progress;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Sealroom: run an algorithm owner's model on a data steward's protected data without either
/// side, or the platform operator, seeing the other's asset.
#[derive(Debug, Parser)]
#[command(
    name = "sealroom",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = "Examples:\n  sealroom keys cek -o my.key\n  sealroom encrypt --cek my.key data/ -o data.sealed/\n  sealroom decrypt --cek my.key data.sealed/ -o data/\n\nEach failure has its own exit code (10 wrong key, 11 tampered, 12 truncated, 13 unknown\nversion, 14 not sealed, 15 bad key file, ...): see docs/exit-codes.md."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make and wrap keys: CEKs (content keys), KEK pairs, WCEKs (wrapped CEKs).
    #[command(subcommand)]
    Keys(cmd::keys::KeysCommand),
    /// Seal a file or a directory tree with a CEK (AES-256-GCM STREAM, see docs/format.md).
    Encrypt(cmd::seal::EncryptArgs),
    /// Unseal a sealed file or directory tree made by `sealroom encrypt`.
    Decrypt(cmd::seal::DecryptArgs),
    /// Import peers' encrypted artifacts: Fernet tokens and OpenPGP (`gpg --symmetric`) files.
    #[command(subcommand)]
    Import(cmd::import::ImportCommand),
    /// Check documents against Cerberus-style validation criteria, as the Enclave API does.
    #[command(subcommand)]
    Criteria(cmd::criteria::CriteriaCommand),
    /// The audit log: verify its hash chain directly in the metadata database.
    #[command(subcommand)]
    Audit(cmd::audit::AuditCommand),
    /// FHE split inference: keys, encrypted inference, the demo and the leakage measurement.
    #[command(subcommand)]
    Fhe(cmd::fhe::FheCommand),
    /// Run an algorithm package on a local plaintext sample, in the sandbox, with the Enclave API.
    LocalRun(cmd::local_run::LocalRunArgs),
    /// Run the control plane, the key broker and the FHE model repository.
    Server(cmd::server::ServerArgs),
    /// Run the enclave agent of a data steward's site: claim its runs and run them in the sandbox.
    Agent(cmd::agent::AgentArgs),
    /// Run the server, the key broker and one local agent on one machine (not built yet).
    Up(cmd::unbuilt::UpArgs),
    /// Run the whole demo collaboration once in a temporary directory (not built yet).
    Demo,
    /// Inside a sandbox: relay 127.0.0.1:5000 to the Enclave API socket, then run the entrypoint.
    #[command(hide = true)]
    EnclaveLaunch(cmd::enclave::LaunchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keys(c) => cmd::keys::run(c),
        Command::Encrypt(a) => cmd::seal::encrypt(a),
        Command::Decrypt(a) => cmd::seal::decrypt(a),
        Command::Import(c) => cmd::import::run(c),
        Command::Criteria(c) => cmd::criteria::run(c),
        Command::Audit(c) => cmd::audit::run(c),
        Command::Fhe(c) => cmd::fhe::run(c),
        Command::LocalRun(a) => cmd::local_run::run(a),
        Command::Server(a) => cmd::server::run(a),
        Command::Agent(a) => cmd::agent::run(a),
        Command::Up(a) => cmd::unbuilt::up(a),
        Command::Demo => cmd::unbuilt::demo(),
        Command::EnclaveLaunch(a) => cmd::enclave::launch(a),
    };
    match result {
        Ok(code) => code,
        Err(err) => exit::report(&err),
    }
}
