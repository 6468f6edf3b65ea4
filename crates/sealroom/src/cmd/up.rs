//! `sealroom up [--demo]`: the control plane, the key broker and one local enclave agent in one
//! process, on embedded defaults (SQLite and blobs in the data directory, the bwrap sandbox, the
//! **simulated** TEE). `sealroom demo`: the demo collaboration once, in a temporary directory,
//! without serving.
//!
//! The demo (docs/demo.md) is seeded through the real REST API with [`sealroom_client::Client`],
//! step by step as the platform admin, the algorithm owner's user and the data steward's user
//! would do it: two organizations and their users, a `simulated` project, each side's KEK
//! downloaded and its WCEK uploaded, the AO's package (its model sealed, listed in
//! `secrets.json`) and validation criteria, the DS's dataset sealed into the built-in storage
//! behind a signed URL, a run configuration, a run request and its initiation. The local agent
//! then claims the run and runs it in the sandbox; the final report is read back as the AO sees
//! it and checked against the criteria once more.
//!
//! The demo's files (`examples/demo`) are compiled into the binary, so `sealroom demo` works from
//! any directory.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use clap::Args;
use sealroom_agent::agent::{self, AgentConfig, AgentError};
use sealroom_agent::sandbox::{self, RunnerKind, SandboxRunner};
use sealroom_client::{
    Client, FileVersion, MemberSpec, NewArtifact, NewJsonVersion, NewProject, NewRun, NewRunConfig,
    NewUser, Upload,
};
use sealroom_envelope::kek::KekPublic;
use sealroom_envelope::Cek;
use sealroom_server::app::{self, ServerOptions};
use sealroom_types::{
    AlgorithmType, ArtifactKind, OutputKind, ProjectId, Role, RunId, RunState, Technology,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

use super::server::{announce, init_logging, init_logging_at, ServerArgs};

/// The demo's files, compiled in.
mod assets {
    pub const DOCKERFILE: &str = include_str!("../../../../examples/demo/algorithm/Dockerfile");
    pub const RUN_SH: &str = include_str!("../../../../examples/demo/algorithm/run.sh");
    pub const VALIDATE_PY: &str = include_str!("../../../../examples/demo/algorithm/validate.py");
    pub const MODEL_JSON: &str = include_str!("../../../../examples/demo/algorithm/model.json");
    pub const CRITERIA_JSON: &str = include_str!("../../../../examples/demo/criteria.json");
    pub const PATIENTS_CSV: &str = include_str!("../../../../examples/demo/data/patients.csv");
}

/// The algorithm owner's organization.
const AO_ORG: &str = "Acme Models";
/// The data steward's organization.
/// (Names allow letters, digits, spaces and `- _ . ( ) &`: no apostrophe.)
const DS_ORG: &str = "St. Mary Hospital";
/// The AO's user.
const AO_USER: &str = "alice";
/// The DS's user.
const DS_USER: &str = "dana";
/// The demo project.
const PROJECT: &str = "Diabetes risk model validation (demo)";
/// The DS's site, served by the local agent.
const SITE: &str = "St. Mary local agent";
/// The run's runtime parameter.
const THRESHOLD: &str = "0.5";
/// The seeded demo's record in `<data-dir>/demo/`.
const RECORD_FILE: &str = "demo.json";
/// The local agent's site token in `<data-dir>/agent/`.
const SITE_TOKEN_FILE: &str = "site-token";
/// How long one claim of the local agent waits under `up` (Ctrl-C waits for it).
const UP_CLAIM_WAIT: Duration = Duration::from_secs(5);
/// ... and under `demo`, which stops the agent as soon as its run ends.
const DEMO_CLAIM_WAIT: Duration = Duration::from_secs(1);
/// How often the demo run's state is read.
const POLL_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// On the first start (a new data dir): seed two organizations with users, a simulated
    /// project, the demo algorithm, criteria and dataset, and run the collaboration once.
    #[arg(long)]
    pub demo: bool,
    /// The local agent's site token (`srt_...`); default: the one `--demo` stored in
    /// <data-dir>/agent/site-token. Without either, no local agent is started.
    #[arg(long, env = "SEALROOM_SITE_TOKEN", hide_env_values = true)]
    pub site_token: Option<String>,
    /// How long to wait for the demo run, e.g. 90s, 10m.
    #[arg(long, default_value = "10m", value_name = "DURATION")]
    pub demo_timeout: String,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How long to wait for the run, e.g. 90s, 10m.
    #[arg(long, default_value = "10m", value_name = "DURATION")]
    pub timeout: String,
    /// Keep the temporary directory (database, blobs, keys) and print where it is.
    #[arg(long)]
    pub keep: bool,
}

/// A demo user's login.
#[derive(Clone, Serialize, Deserialize)]
struct Login {
    username: String,
    password: String,
    organization: String,
    role: Role,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("username", &self.username)
            .field("organization", &self.organization)
            .finish_non_exhaustive()
    }
}

/// What the demo seeded, kept in `<data-dir>/demo/demo.json` (mode 0600: it holds the demo
/// users' passwords).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DemoRecord {
    note: String,
    project_id: ProjectId,
    run_id: RunId,
    logins: Vec<Login>,
}

/// `sealroom up`.
pub fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    let runner = match bwrap_runner() {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let timeout = super::local_run::parse_duration(&args.demo_timeout)?;
    let opts = args.server.options()?;
    let admin = opts.admin_username.clone();
    let data_dir = opts.data_dir.clone();
    let rt = runtime()?;
    rt.block_on(async move {
        let mut started = app::start(opts).await.context("starting the server")?;
        announce(&started, &admin);
        let url = started.url.clone();
        let cancel = Arc::new(AtomicBool::new(false));

        // The demo's seeding, on the first start only.
        let mut record = None;
        let mut seeded = None;
        if args.demo {
            match demo_state(&data_dir, started.admin_password.is_some())? {
                DemoState::Fresh => {
                    let password = started
                        .admin_password
                        .clone()
                        .context("a new data dir has the admin's first password")?;
                    let (u, a, d) = (url.clone(), admin.clone(), data_dir.clone());
                    let job = tokio::task::spawn_blocking(move || seed(&u, &a, &password, &d));
                    let s = tokio::select! {
                        r = job => r.context("the demo seeding panicked")??,
                        _ = shutdown_signal() => {
                            eprintln!("stopping (the demo was not seeded completely)");
                            return Ok(ExitCode::SUCCESS);
                        }
                    };
                    record = Some(s.record.clone());
                    seeded = Some(s);
                }
                DemoState::Seeded(r) => {
                    eprintln!(
                        "demo: {} already holds the seeded demo; not seeding it again",
                        data_dir.display()
                    );
                    record = Some(r);
                }
                DemoState::Unfinished => eprintln!(
                    "demo: an earlier demo seeding in {} did not finish; not seeding. Delete the \
                     directory (or use another --data-dir) to start the demo over.",
                    data_dir.display()
                ),
                DemoState::NotDemo => eprintln!(
                    "demo: {} was first started without --demo; not seeding. Use a new --data-dir \
                     for the demo.",
                    data_dir.display()
                ),
            }
        }

        // The local agent.
        let token = match args.site_token.clone() {
            Some(t) => Some(Zeroizing::new(t)),
            None => stored_site_token(&data_dir)?,
        };
        let mut local = match token {
            Some(t) => Some(start_agent(&url, &t, runner, &data_dir, UP_CLAIM_WAIT)?),
            None => {
                eprintln!(
                    "no local agent: no site token. An admin makes one for a data steward's \
                     organization (sealroom sites create ...); then restart with --site-token \
                     or SEALROOM_SITE_TOKEN."
                );
                None
            }
        };

        // The demo run.
        if let (Some(s), Some(agent)) = (seeded, local.as_mut()) {
            let run_id = s.record.run_id;
            let c = cancel.clone();
            let job = tokio::task::spawn_blocking(move || wait_and_check(&s, timeout, &c));
            let outcome = tokio::select! {
                r = job => r.context("the demo run's watcher panicked")?,
                r = agent.ended() => Err(agent_stopped(r)),
                _ = shutdown_signal() => {
                    cancel.store(true, Ordering::Relaxed);
                    eprintln!("stopping: the demo run is stopped and wiped");
                    agent.stop_now().await;
                    return Ok(ExitCode::SUCCESS);
                }
            };
            cancel.store(true, Ordering::Relaxed);
            match outcome {
                Ok((report, took)) => {
                    println!();
                    println!(
                        "Demo run {run_id} completed in {:.1}s: the final report validated \
                         against the accepted criteria.",
                        took.as_secs_f64()
                    );
                    println!("Final report, as {AO_ORG} (the algorithm owner) sees it:");
                    println!("{}", serde_json::to_string_pretty(&report)?);
                }
                Err(e) => {
                    println!();
                    println!("Demo run {run_id} FAILED: {e:#}");
                }
            }
        }

        println!();
        println!("Sealroom is up at {url}");
        println!("  API:      {url}/api/v1");
        println!("  API docs: {url}/api/docs/");
        if let Some(r) = &record {
            print_logins(r, &url, &data_dir);
        }
        println!("Serving; Ctrl-C stops.");

        let result = tokio::select! {
            r = &mut started.serving => match r {
                Ok(Ok(())) => Err(anyhow!("the server stopped")),
                Ok(Err(e)) => Err(anyhow::Error::new(e).context("serving")),
                Err(e) => Err(anyhow::Error::new(e).context("the server task failed")),
            },
            r = agent_ended(&mut local) => Err(agent_stopped(r)),
            _ = shutdown_signal() => {
                eprintln!("stopping");
                Ok(ExitCode::SUCCESS)
            }
        };
        if let Some(agent) = local.as_mut() {
            agent.stop_now().await;
        }
        result
    })
}

/// `sealroom demo`.
pub fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    init_logging_at(tracing::Level::WARN);
    let runner = match bwrap_runner() {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    let timeout = super::local_run::parse_duration(&args.timeout)?;
    let tmp = tempfile::Builder::new()
        .prefix("sealroom-demo-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let data_dir = tmp.path().join("data");
    let listen = "127.0.0.1:0"
        .parse()
        .context("the loopback address parses")?;
    let opts = ServerOptions::new(data_dir.clone(), listen);
    let admin = opts.admin_username.clone();
    let rt = runtime()?;
    let begun = Instant::now();
    let result = rt.block_on(async move {
        let started = app::start(opts).await.context("starting the server")?;
        let url = started.url.clone();
        eprintln!("demo: server on {url} (data in {})", data_dir.display());
        let password = started
            .admin_password
            .clone()
            .context("a new data dir has the admin's first password")?;
        let (u, a, d) = (url.clone(), admin.clone(), data_dir.clone());
        let seeded = tokio::task::spawn_blocking(move || seed(&u, &a, &password, &d))
            .await
            .context("the demo seeding panicked")??;
        let token =
            stored_site_token(&data_dir)?.context("the demo seeding stores the site token")?;
        let mut agent = start_agent(&url, &token, runner, &data_dir, DEMO_CLAIM_WAIT)?;
        let cancel = Arc::new(AtomicBool::new(false));
        let c = cancel.clone();
        let record = seeded.record.clone();
        let job = tokio::task::spawn_blocking(move || wait_and_check(&seeded, timeout, &c));
        let outcome = tokio::select! {
            r = job => r.context("the demo run's watcher panicked")?,
            r = agent.ended() => Err(agent_stopped(r)),
        };
        cancel.store(true, Ordering::Relaxed);
        agent.stop_now().await;
        started.serving.abort();
        Ok::<_, anyhow::Error>((record, outcome))
    });
    let (record, outcome) = result?;
    let dir_note = if args.keep {
        let kept = tmp.keep();
        format!("kept in {}", kept.display())
    } else {
        "removed".to_string()
    };
    let (report, took) = outcome.context("the demo collaboration did not complete")?;
    println!("Sealroom demo: OK (the final report validated)");
    println!("  organizations: {AO_ORG} (algorithm owner), {DS_ORG} (data steward)");
    println!(
        "  project {} (simulated TEE), run {} with THRESHOLD={THRESHOLD}: completed {:.1}s \
         after its initiation ({:.1}s in all)",
        record.project_id,
        record.run_id,
        took.as_secs_f64(),
        begun.elapsed().as_secs_f64()
    );
    println!("  final report, as the algorithm owner sees it:");
    for metric in ["accuracy", "sensitivity", "specificity"] {
        let m = &report["report"][metric];
        println!(
            "    {metric:<12} {} (95% CI ±{}, n={})",
            m["value"], m["CI"], m["n"]
        );
    }
    println!("  temporary directory: {dir_note}");
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The bwrap runner; without it, says how to install it and gives exit code 69
/// (`EX_UNAVAILABLE`).
fn bwrap_runner() -> Result<Arc<dyn SandboxRunner>, ExitCode> {
    sandbox::runner(RunnerKind::Bwrap).map_err(|e| {
        eprintln!(
            "error: {e}\n  The local agent runs algorithms in the bwrap sandbox: install it with \
             scripts/setup/60-sandbox.sh (Debian/Ubuntu: apt-get install bubblewrap)."
        );
        ExitCode::from(crate::exit::UNAVAILABLE)
    })
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

// ---- the local agent ------------------------------------------------------------------------

fn agent_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("agent")
}

fn demo_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("demo")
}

/// Creates a private (0700) directory if it does not exist.
fn private_dir(path: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

/// The site token `--demo` stored, if any.
fn stored_site_token(data_dir: &Path) -> anyhow::Result<Option<Zeroizing<String>>> {
    let path = agent_dir(data_dir).join(SITE_TOKEN_FILE);
    match fs::read_to_string(&path) {
        Ok(t) if t.trim().is_empty() => bail!("{} is empty", path.display()),
        Ok(t) => Ok(Some(Zeroizing::new(t.trim().to_string()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The in-process agent.
struct LocalAgent {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<Result<(), AgentError>>>,
}

impl LocalAgent {
    /// Resolves when the agent stops by itself (never, once it has been awaited).
    async fn ended(&mut self) -> anyhow::Result<()> {
        match &mut self.task {
            Some(task) => {
                let r = task.await;
                self.task = None;
                flatten_agent(r)
            }
            None => std::future::pending().await,
        }
    }

    /// Stops it: its runs are stopped and wiped.
    async fn stop_now(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            if let Err(e) = flatten_agent(task.await) {
                eprintln!("the local agent: {e:#}");
            }
        }
    }
}

async fn agent_ended(agent: &mut Option<LocalAgent>) -> anyhow::Result<()> {
    match agent {
        Some(a) => a.ended().await,
        None => std::future::pending().await,
    }
}

fn flatten_agent(r: Result<Result<(), AgentError>, tokio::task::JoinError>) -> anyhow::Result<()> {
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.into()),
        Err(e) => Err(anyhow::Error::new(e).context("the agent task failed")),
    }
}

fn agent_stopped(r: anyhow::Result<()>) -> anyhow::Error {
    match r {
        Ok(()) => anyhow!("the local agent stopped"),
        Err(e) => e.context("the local agent stopped"),
    }
}

/// Starts the agent on the current runtime: bwrap, this executable as the launcher, its state
/// (the simulated attester's key) in `<data-dir>/agent`. A stop waits for the claim in flight,
/// so `claim_wait` bounds how long stopping takes.
fn start_agent(
    url: &str,
    token: &str,
    runner: Arc<dyn SandboxRunner>,
    data_dir: &Path,
    claim_wait: Duration,
) -> anyhow::Result<LocalAgent> {
    let state = agent_dir(data_dir);
    private_dir(&state)?;
    let launcher = std::env::current_exe().context("cannot find the sealroom executable")?;
    let mut config = AgentConfig::new(url, token, runner, launcher, state);
    config.claim_wait = claim_wait;
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(agent::run(config, rx));
    Ok(LocalAgent {
        stop,
        task: Some(task),
    })
}

// ---- seeding ------------------------------------------------------------------------------

/// What `up --demo` finds in the data directory.
enum DemoState {
    /// A new data directory: seed it.
    Fresh,
    /// Seeded before.
    Seeded(DemoRecord),
    /// A seeding began and did not finish.
    Unfinished,
    /// Started before without `--demo`.
    NotDemo,
}

fn demo_state(data_dir: &Path, fresh: bool) -> anyhow::Result<DemoState> {
    let dir = demo_dir(data_dir);
    let path = dir.join(RECORD_FILE);
    if path.exists() {
        let text = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let record = serde_json::from_slice(&text)
            .with_context(|| format!("{} is not the demo's record", path.display()))?;
        return Ok(DemoState::Seeded(record));
    }
    if dir.exists() {
        return Ok(DemoState::Unfinished);
    }
    Ok(if fresh {
        DemoState::Fresh
    } else {
        DemoState::NotDemo
    })
}

/// A seeded demo with its run initiated.
struct Seeded {
    record: DemoRecord,
    ao: Client,
    ds: Client,
}

fn step(what: &str) {
    eprintln!("demo: {what}");
}

/// A password for a demo user: 20 letters and digits from the operating system's generator.
fn demo_password() -> anyhow::Result<String> {
    use rand::RngCore as _;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut out = String::with_capacity(20);
    let mut buf = [0u8; 64];
    while out.len() < 20 {
        rand::rngs::OsRng
            .try_fill_bytes(&mut buf)
            .map_err(|e| anyhow!("the operating system's random generator failed: {e}"))?;
        // Rejection sampling keeps the choice uniform.
        let limit = 256 - 256 % ALPHABET.len();
        for b in buf {
            if (b as usize) < limit && out.len() < 20 {
                out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
            }
        }
    }
    Ok(out)
}

/// Writes a new file with mode 0600.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    sealroom_envelope::key::write_secret_file(path, bytes)?;
    Ok(())
}

/// Seeds the demo through the API and initiates its run (blocking).
fn seed(
    url: &str,
    admin_user: &str,
    admin_password: &str,
    data_dir: &Path,
) -> anyhow::Result<Seeded> {
    let demo = demo_dir(data_dir);
    private_dir(&demo)?;
    let anonymous = Client::new(url)?;
    let login = |user: &str, password: &str| -> anyhow::Result<Client> {
        let session = anonymous
            .login(user, password)
            .with_context(|| format!("signing in as {user}"))?;
        Ok(anonymous.with_token(&session.token))
    };

    // The platform admin: organizations, users, the DS's site, the project.
    let admin = login(admin_user, admin_password)?;
    let ao_org = admin.create_org(AO_ORG)?;
    let ds_org = admin.create_org(DS_ORG)?;
    let mut logins = Vec::new();
    for (username, org, role) in [
        (AO_USER, &ao_org, Role::AlgorithmOwner),
        (DS_USER, &ds_org, Role::DataSteward),
    ] {
        let password = demo_password()?;
        admin.create_user(&NewUser {
            org_id: org.id,
            username,
            display_name: None,
            password: &password,
            is_admin: false,
        })?;
        logins.push(Login {
            username: username.into(),
            password,
            organization: org.name.to_string(),
            role,
        });
    }
    step(&format!(
        "created the organizations {AO_ORG} and {DS_ORG}, with the users {AO_USER} and {DS_USER}"
    ));
    let site = admin.create_site(ds_org.id, SITE)?;
    let agent_state = agent_dir(data_dir);
    private_dir(&agent_state)?;
    write_private(&agent_state.join(SITE_TOKEN_FILE), site.token.as_bytes())?;
    step(&format!(
        "registered the site \"{SITE}\" for {DS_ORG}; its token is in {}",
        agent_state.join(SITE_TOKEN_FILE).display()
    ));
    let page = admin.create_project(&NewProject {
        name: PROJECT,
        description: "Acme's logistic model for diabetes risk, validated on St. Mary patients",
        technology: Technology::Simulated,
        members: vec![
            MemberSpec {
                org_id: ao_org.id,
                role: Role::AlgorithmOwner,
            },
            MemberSpec {
                org_id: ds_org.id,
                role: Role::DataSteward,
            },
        ],
    })?;
    let project = page.project.id;
    step(&format!(
        "created the project \"{PROJECT}\" ({project}, simulated TEE)"
    ));

    let ao = login(AO_USER, &logins[0].password)?;
    let ds = login(DS_USER, &logins[1].password)?;

    // Each side: its KEK, a new CEK wrapped to it (the WCEK), uploaded. The CEKs stay here.
    let mut ceks = Vec::new();
    for (client, user, role) in [
        (&ao, AO_USER, Role::AlgorithmOwner),
        (&ds, DS_USER, Role::DataSteward),
    ] {
        let mut der = Vec::new();
        client.download_kek(project, role, &mut der)?;
        let cek = Cek::generate()?;
        let wcek = KekPublic::from_der(&der)?.wrap(&cek)?;
        let v = client.upload_wcek(project, role, &wcek)?;
        let path = demo.join(format!("{}.cek", role.short()));
        cek.write_new_file(&path)?;
        step(&format!(
            "{user} ({}): downloaded the project's KEK, uploaded a WCEK (version {}; the CEK is \
             kept in {}, mode 0600)",
            role_name(role),
            v.version,
            path.display()
        ));
        ceks.push(cek);
    }
    let (ao_cek, ds_cek) = (&ceks[0], &ceks[1]);

    // The AO: the package, its model sealed; the validation criteria.
    let work = tempfile::Builder::new()
        .prefix(".seeding-")
        .tempdir_in(&demo)
        .context("cannot create a working directory")?;
    let pkg = work.path().join("package");
    private_dir(&pkg)?;
    for (name, text) in [
        ("Dockerfile", assets::DOCKERFILE),
        ("run.sh", assets::RUN_SH),
        ("validate.py", assets::VALIDATE_PY),
    ] {
        fs::write(pkg.join(name), text)
            .with_context(|| format!("cannot write {}", pkg.join(name).display()))?;
    }
    let model = work.path().join("model.json");
    fs::write(&model, assets::MODEL_JSON).context("cannot write the model")?;
    sealroom_envelope::dir::seal_file(&model, &pkg.join("model.json"), ao_cek, false, &())?;
    fs::write(
        pkg.join(super::package::SECRETS_MANIFEST),
        "{\"files\": [\"model.json\"]}\n",
    )
    .context("cannot write secrets.json")?;
    let files = super::package::check_package(&pkg)?;
    let mut tar = Vec::new();
    super::package::write_tar(&pkg, &files, &mut tar)?;
    let algorithm = ao.create_artifact(
        project,
        &NewArtifact {
            kind: ArtifactKind::Algorithm,
            name: "Diabetes risk model",
            description: "Logistic regression on age, BMI and glucose (stdlib-only Python)",
            algorithm_type: Some(AlgorithmType::Validation),
        },
    )?;
    let len = tar.len() as u64;
    let alg_v = ao.upload_version(
        algorithm.id,
        &FileVersion {
            tag: "v1",
            description: "model.json sealed",
            file_name: "diabetes-risk-model.tar",
            data_specification_version: None,
        },
        Upload::new(&mut &tar[..], Some(len)),
    )?;
    let steps = alg_v.detail["upload_steps"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let failed: Vec<String> = steps
        .iter()
        .filter(|s| s["status"] != "passed")
        .map(|s| {
            format!(
                "{} {}: {}",
                s["step"].as_str().unwrap_or("?"),
                s["status"].as_str().unwrap_or("?"),
                s["message"].as_str().unwrap_or("")
            )
        })
        .collect();
    if steps.is_empty() || !failed.is_empty() {
        bail!(
            "the server refused the demo package's upload steps: {}",
            failed.join("; ")
        );
    }
    step(&format!(
        "{AO_USER} ({AO_ORG}) uploaded the algorithm package ({len} bytes; model.json sealed, listed in secrets.json); upload steps passed"
    ));
    let criteria = ao.create_artifact(
        project,
        &NewArtifact {
            kind: ArtifactKind::ValidationCriteria,
            name: "Report schema",
            description: "accuracy, sensitivity and specificity with 95% intervals",
            algorithm_type: None,
        },
    )?;
    let criteria_json: serde_json::Value =
        serde_json::from_str(assets::CRITERIA_JSON).context("the demo's criteria are JSON")?;
    let crit_v = ao.add_json_version(
        criteria.id,
        &NewJsonVersion::ValidationCriteria {
            tag: "v1",
            description: "",
            criteria: criteria_json,
        },
    )?;
    ds.accept_version(crit_v.id)?;
    step(&format!(
        "{AO_USER} uploaded the validation criteria; {DS_USER} ({DS_ORG}) accepted them"
    ));

    // The DS: the dataset sealed into the built-in storage, behind a signed URL.
    let plain = work.path().join("data");
    private_dir(&plain)?;
    fs::write(plain.join("patients.csv"), assets::PATIENTS_CSV)
        .context("cannot write the dataset")?;
    let sealed = work.path().join("data.sealed");
    sealroom_envelope::dir::seal_tree(&plain, &sealed, ds_cek, &())?;
    fs::remove_dir_all(&plain).context("cannot remove the plaintext dataset")?;
    for f in super::package::walk_files(&sealed)? {
        let path = sealed.join(&f);
        let mut file =
            fs::File::open(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let len = file
            .metadata()
            .with_context(|| format!("cannot stat {}", path.display()))?
            .len();
        ds.put_storage(
            project,
            &format!("patients/{f}"),
            Upload::new(&mut file, Some(len)),
        )?;
    }
    let signed = ds.sign_storage(project, "patients/", 8784)?;
    let dataset = ds.create_artifact(
        project,
        &NewArtifact {
            kind: ArtifactKind::Dataset,
            name: "Diabetes clinic patients",
            description: "240 synthetic patients: age, BMI, glucose, outcome",
            algorithm_type: None,
        },
    )?;
    let ds_v = ds.add_json_version(
        dataset.id,
        &NewJsonVersion::Dataset {
            tag: "v1",
            description: "sealed with the data steward's CEK",
            url: &signed.url,
            data_specification_version: None,
            attestation_report_version: None,
        },
    )?;
    ds.certify_version(ds_v.id)?;
    step(&format!(
        "{DS_USER} sealed the dataset into the built-in storage, registered it by its signed URL and certified it"
    ));
    drop(work);

    // The AO asks for a run; the DS initiates it.
    let config = ao.create_run_config(
        project,
        &NewRunConfig {
            name: "Risk model v1 on the clinic patients",
            description: "",
            algorithm_version_id: alg_v.id,
            dataset_version_id: ds_v.id,
            criteria_version_id: Some(crit_v.id),
        },
    )?;
    let run = ao.request_run(
        config.id,
        &NewRun {
            params: BTreeMap::from([("THRESHOLD".to_string(), THRESHOLD.to_string())]),
            vcpus: 1,
            ram_gib: 2,
        },
    )?;
    ds.initiate_run(run.id)?;
    step(&format!(
        "{AO_USER} requested run {} (THRESHOLD={THRESHOLD}); {DS_USER} initiated it",
        run.id
    ));

    let record = DemoRecord {
        note: "DEMO ONLY: generated passwords of the demo users, kept here so that later starts \
               can show them. Never use a demo data directory for real data."
            .into(),
        project_id: project,
        run_id: run.id,
        logins,
    };
    let mut text = serde_json::to_vec_pretty(&record)?;
    text.push(b'\n');
    write_private(&demo.join(RECORD_FILE), &text)?;
    Ok(Seeded { record, ao, ds })
}

/// Waits for the demo run to end, printing its state changes on stderr, and returns its final
/// report as the AO sees it, checked: the run completed, its final report output passed the
/// criteria, and it validates against the demo's criteria here too (blocking).
fn wait_and_check(
    s: &Seeded,
    timeout: Duration,
    cancel: &AtomicBool,
) -> anyhow::Result<(serde_json::Value, Duration)> {
    let run_id = s.record.run_id;
    let begun = Instant::now();
    let mut seen = 0usize;
    let state = loop {
        if cancel.load(Ordering::Relaxed) {
            bail!("stopped while waiting for run {run_id}");
        }
        let detail = s.ao.run(run_id)?;
        for change in detail.history.iter().skip(seen) {
            let message = change
                .message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            eprintln!(
                "demo: run {run_id}: {}{message} ({:.1}s)",
                change.to,
                begun.elapsed().as_secs_f64()
            );
        }
        seen = seen.max(detail.history.len());
        if matches!(
            detail.run.state,
            RunState::Completed | RunState::Failed | RunState::Cancelled | RunState::Rejected
        ) {
            break detail.run.state;
        }
        if begun.elapsed() > timeout {
            print_logs(&s.ds, run_id);
            bail!(
                "run {run_id} is still {} after {}s (--timeout)",
                detail.run.state,
                timeout.as_secs()
            );
        }
        std::thread::sleep(POLL_EVERY);
    };
    if state != RunState::Completed {
        print_logs(&s.ds, run_id);
        let detail = s.ao.run(run_id)?;
        let why = detail
            .history
            .last()
            .and_then(|c| c.message.clone())
            .or(detail.run.reason)
            .unwrap_or_else(|| "no reason given".into());
        bail!("run {run_id} ended {state}: {why}");
    }
    let outputs = s.ao.run_outputs(run_id)?;
    let passed = outputs
        .iter()
        .any(|o| o.kind == OutputKind::FinalReport && o.passed_criteria == Some(true));
    if !passed {
        bail!("run {run_id} completed without a final report that passed the criteria");
    }
    let report = s.ao.run_report(run_id)?;
    let criteria = sealroom_criteria::Criteria::from_json(assets::CRITERIA_JSON.as_bytes())
        .context("the demo's criteria parse")?;
    let check = criteria
        .validate_json(&serde_json::to_vec(&report)?)
        .context("the final report is not a JSON object")?;
    if !check.is_valid() {
        bail!(
            "the final report of run {run_id} does not validate against the criteria: {}",
            check.response_json()
        );
    }
    Ok((report, begun.elapsed()))
}

/// Prints the run's last log lines (as the DS, who sees the stage logs) on stderr.
fn print_logs(ds: &Client, run_id: RunId) {
    match ds.run_logs(run_id, None, None, Some(1000)) {
        Ok(page) => {
            let from = page.lines.len().saturating_sub(30);
            if !page.lines.is_empty() {
                eprintln!("demo: the run's last log lines:");
            }
            for l in &page.lines[from..] {
                eprintln!("  [{}] {}", l.stream, l.line);
            }
        }
        Err(e) => eprintln!("demo: cannot read the run's logs: {e}"),
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::AlgorithmOwner => "algorithm owner",
        Role::DataSteward => "data steward",
    }
}

fn print_logins(r: &DemoRecord, url: &str, data_dir: &Path) {
    println!(
        "Demo logins (DEMO ONLY: generated passwords, kept in {}, mode 0600):",
        demo_dir(data_dir).join(RECORD_FILE).display()
    );
    for l in &r.logins {
        println!(
            "  {:<6} password: {}   ({}, {})",
            l.username,
            l.password,
            l.organization,
            role_name(l.role)
        );
    }
    println!(
        "  Sign in: sealroom login --server {url} --username {}",
        r.logins
            .first()
            .map(|l| l.username.as_str())
            .unwrap_or(AO_USER)
    );
    println!(
        "  Demo project {}, run {} (sealroom runs report {} as {AO_USER})",
        r.project_id, r.run_id, r.run_id
    );
    println!(
        "  CEKs: {}/ao.cek and ds.cek (mode 0600)",
        demo_dir(data_dir).display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_passwords_are_long_and_unambiguous() {
        let a = demo_password().unwrap();
        let b = demo_password().unwrap();
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() && !"01lIoO".contains(c)));
    }

    #[test]
    fn demo_state_follows_the_data_dir() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            demo_state(d.path(), true).unwrap(),
            DemoState::Fresh
        ));
        assert!(matches!(
            demo_state(d.path(), false).unwrap(),
            DemoState::NotDemo
        ));
        fs::create_dir(demo_dir(d.path())).unwrap();
        assert!(matches!(
            demo_state(d.path(), true).unwrap(),
            DemoState::Unfinished
        ));
        fs::write(demo_dir(d.path()).join(RECORD_FILE), b"{").unwrap();
        assert!(demo_state(d.path(), false).is_err());
    }

    #[test]
    fn the_embedded_demo_fits_together() {
        // The package's secret is what secrets.json will list; the criteria parse.
        let model: serde_json::Value = serde_json::from_str(assets::MODEL_JSON).unwrap();
        assert!(model["weights"].is_object() && model["bias"].is_number());
        assert!(assets::VALIDATE_PY.contains("model.json"));
        assert!(assets::RUN_SH.contains("validate.py"));
        sealroom_criteria::Criteria::from_json(assets::CRITERIA_JSON.as_bytes()).unwrap();
        assert_eq!(assets::PATIENTS_CSV.lines().count(), 241);
    }
}
