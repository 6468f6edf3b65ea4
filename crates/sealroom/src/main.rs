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
    after_help = "Examples:\n  sealroom keys cek -o my.key\n  sealroom encrypt --cek my.key data/ -o data.sealed/\n  sealroom decrypt --cek my.key data.sealed/ -o data/\n  sealroom login --server https://sealroom.example -u alice\n  sealroom projects list\n\nEach failure has its own exit code (10 wrong key, 11 tampered, 12 truncated, 13 unknown\nversion, 14 not sealed, 15 bad key file, ...): see docs/exit-codes.md."
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
    /// Seal an algorithm package's chosen files and write its secrets.json manifest.
    #[command(subcommand)]
    Package(cmd::package::PackageCommand),
    /// Sign in to a server and store the token (per server, mode 0600).
    Login(cmd::login::LoginArgs),
    /// Sign out: revoke the stored token and forget it.
    Logout(cmd::login::LogoutArgs),
    /// Show who the stored token belongs to.
    Whoami(cmd::login::WhoamiArgs),
    /// Change your password.
    Password(cmd::login::PasswordArgs),
    /// API tokens for scripts and CI: create, list, revoke.
    Token(cmd::login::TokenArgs),
    /// Organizations (admin).
    Orgs(cmd::admin::OrgsArgs),
    /// Users (admin).
    Users(cmd::admin::UsersArgs),
    /// Data stewards' sites and their agents' tokens (admin).
    Sites(cmd::admin::SitesArgs),
    /// Projects: create, list, show, state, members, settings.
    Projects(cmd::projects::ProjectsArgs),
    /// A project's keys: download your KEK, upload your WCEK, list WCEK versions.
    ProjectKeys(cmd::projects::ProjectKeysArgs),
    /// Artifacts and versions: create, upload (documents, packages), accept, certify, download.
    Artifacts(cmd::artifacts::ArtifactsArgs),
    /// The built-in storage of sealed dataset files: put, list, sign a URL.
    Storage(cmd::artifacts::StorageArgs),
    /// Run configurations: an algorithm version with a dataset version.
    RunConfigs(cmd::runs::RunConfigsArgs),
    /// Runs: request, initiate, reject, cancel, status, logs, outputs, report.
    Runs(cmd::runs::RunsArgs),
    /// Your notifications.
    Notifications(cmd::comms::NotificationsArgs),
    /// A project's chat.
    Chat(cmd::comms::ChatArgs),
    /// Search what you may see.
    Search(cmd::comms::SearchArgs),
    /// Run the server, the key broker and one local agent on one machine; --demo seeds and runs
    /// the demo collaboration on the first start.
    Up(cmd::up::UpArgs),
    /// Run the whole demo collaboration once in a temporary directory; exit 0 only if its final
    /// report validated.
    Demo(cmd::up::DemoArgs),
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
        Command::Package(c) => cmd::package::run(c),
        Command::Login(a) => cmd::login::login(a),
        Command::Logout(a) => cmd::login::logout(a),
        Command::Whoami(a) => cmd::login::whoami(a),
        Command::Password(a) => cmd::login::password(a),
        Command::Token(a) => cmd::login::token(a),
        Command::Orgs(a) => cmd::admin::orgs(a),
        Command::Users(a) => cmd::admin::users(a),
        Command::Sites(a) => cmd::admin::sites(a),
        Command::Projects(a) => cmd::projects::projects(a),
        Command::ProjectKeys(a) => cmd::projects::project_keys(a),
        Command::Artifacts(a) => cmd::artifacts::artifacts(a),
        Command::Storage(a) => cmd::artifacts::storage(a),
        Command::RunConfigs(a) => cmd::runs::run_configs(a),
        Command::Runs(a) => cmd::runs::runs(a),
        Command::Notifications(a) => cmd::comms::notifications(a),
        Command::Chat(a) => cmd::comms::chat(a),
        Command::Search(a) => cmd::comms::search(a),
        Command::Up(a) => cmd::up::up(a),
        Command::Demo(a) => cmd::up::demo(a),
        Command::EnclaveLaunch(a) => cmd::enclave::launch(a),
    };
    match result {
        Ok(code) => code,
        Err(err) => exit::report(&err),
    }
}
