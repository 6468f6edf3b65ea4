//! `sealroom server`: the control plane, key broker and FHE repository on one address.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use sealroom_server::app::{self, ServerOptions};

/// Options shared by `server` and `up`.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Where the database (SQLite), blobs, keys and models live.
    #[arg(long, env = "SEALROOM_DATA_DIR", default_value = "sealroom-data")]
    pub data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "SEALROOM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Metadata database: `postgres://user:pass@host/db` (default: SQLite in the data dir).
    #[arg(long, env = "SEALROOM_DATABASE_URL")]
    pub database_url: Option<String>,
    /// The URL clients and agents reach this server at (default: http://LISTEN).
    #[arg(long, env = "SEALROOM_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Key provider configuration (JSON file: {"kind":"file","data_dir":...} or
    /// {"kind":"pkcs11","module":...,"token_label":...,"pin_env":...}); default: the encrypted
    /// file store in the data dir (docs/keys.md).
    #[arg(long, env = "SEALROOM_KEY_PROVIDER")]
    pub key_provider: Option<PathBuf>,
}

impl ServerArgs {
    /// The server options these arguments describe.
    pub fn options(&self) -> anyhow::Result<ServerOptions> {
        let mut opts = ServerOptions::new(self.data_dir.clone(), self.listen);
        opts.database_url = self.database_url.clone();
        opts.public_url = self.public_url.clone();
        if let Some(path) = &self.key_provider {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!("reading the key provider configuration {}", path.display())
            })?;
            opts.key_provider = Some(serde_json::from_str(&text).with_context(|| {
                format!(
                    "the key provider configuration {} is not valid",
                    path.display()
                )
            })?);
        }
        Ok(opts)
    }
}

/// Installs the log output (stderr; `SEALROOM_LOG=debug` for more).
pub fn init_logging() {
    init_logging_at(tracing::Level::INFO);
}

/// Installs the log output at `default` unless `SEALROOM_LOG` (`debug`, `info`, `warn`,
/// `error`) says otherwise.
pub fn init_logging_at(default: tracing::Level) {
    let level = match std::env::var("SEALROOM_LOG").as_deref() {
        Ok("debug") => tracing::Level::DEBUG,
        Ok("info") => tracing::Level::INFO,
        Ok("warn") => tracing::Level::WARN,
        Ok("error") => tracing::Level::ERROR,
        _ => default,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Prints where the server is and, on the first start, the admin's one-time password.
pub fn announce(started: &app::Started, admin_username: &str) {
    println!("Sealroom server listening on {}", started.url);
    println!("  API:      {}/api/v1", started.url);
    println!("  API docs: {}/api/docs/", started.url);
    if let Some(password) = &started.admin_password {
        println!();
        println!("First start: created the platform admin.");
        println!("  username: {admin_username}");
        println!("  password: {}", password.as_str());
        println!("This password is shown once and stored only as an argon2id hash. Sign in and");
        println!(
            "change it: sealroom login --server {} --username {admin_username}",
            started.url
        );
        println!("           then change it (PUT /api/v1/me/password).");
    }
}

/// `sealroom server`.
pub fn run(args: ServerArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    let opts = args.options()?;
    let admin = opts.admin_username.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let started = app::start(opts).await?;
        announce(&started, &admin);
        tokio::select! {
            r = started.serving => {
                r.context("the server task failed")?.context("serving")?;
            }
            _ = tokio::signal::ctrl_c() => {
                eprintln!("stopping");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
