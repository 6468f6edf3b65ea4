//! The client commands against a real control plane (`sealroom_control::router` on a loopback
//! port, SQLite, local blobs, the file key provider): sign-in and stored credentials, tokens,
//! organizations, users and sites, and the exit codes of failures.
//!
//! Routes that are not on this branch yet (projects, artifacts, runs, comms) are covered by the
//! request-building tests of `crates/sealroom-client/tests/requests.rs` and the argument tests
//! in each command module.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use serde_json::Value;

/// A control plane on a loopback port (the harness of `sealroom-control/tests/common`, SQLite
/// only).
struct Server {
    url: String,
    admin_password: String,
    _data_dir: tempfile::TempDir,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Server {
    fn start() -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let data_dir = tempfile::tempdir().unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let config = sealroom_control::ControlConfig {
            public_url: url.clone(),
            ..Default::default()
        };
        let dir = data_dir.path().to_path_buf();
        let (state, password) = runtime.block_on(async move {
            let store = Arc::new(
                sealroom_store::SqlStore::connect(
                    &sealroom_store::StoreConfig::sqlite_in_data_dir(&dir),
                )
                .await
                .unwrap(),
            );
            let blobs = Arc::new(
                sealroom_blob::LocalBlobStore::in_data_dir(&dir)
                    .await
                    .unwrap(),
            );
            let keys = sealroom_broker::open_provider(&sealroom_broker::KeyProviderConfig::File {
                data_dir: dir.clone(),
            })
            .unwrap();
            let signer = sealroom_control::load_or_create_url_signer(&dir).unwrap();
            let password = sealroom_control::bootstrap_admin(&*store, "Platform", "admin")
                .await
                .unwrap()
                .expect("first start makes an admin");
            let state = sealroom_control::ControlState::new(store, blobs, keys, signer, config);
            (state, password.to_string())
        });
        let router = sealroom_control::router(state);
        runtime.spawn(async move {
            sealroom_control::serve(listener, router).await.unwrap();
        });
        Server {
            url,
            admin_password: password,
            _data_dir: data_dir,
            runtime: Some(runtime),
        }
    }
}

/// A CLI user: its own config directory, no inherited Sealroom environment.
struct Cli {
    config: tempfile::TempDir,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}", self.stdout))
    }

    #[track_caller]
    fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "stderr: {}\nstdout: {}",
            self.stderr, self.stdout
        );
        self
    }

    #[track_caller]
    fn fails(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "expected exit {code}; stderr: {}\nstdout: {}",
            self.stderr, self.stdout
        );
        assert!(self.stderr.starts_with("error: "), "{}", self.stderr);
        self
    }
}

impl Cli {
    fn new() -> Cli {
        Cli {
            config: tempfile::tempdir().unwrap(),
        }
    }

    fn credentials(&self) -> PathBuf {
        self.config.path().join("sealroom").join("credentials.json")
    }

    fn run(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sealroom"));
        cmd.args(args)
            .env("XDG_CONFIG_HOME", self.config.path())
            .env("HOME", self.config.path())
            .env_remove("SEALROOM_SERVER")
            .env_remove("SEALROOM_TOKEN")
            .env_remove("SEALROOM_CA_CERT")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let Output {
            status,
            stdout,
            stderr,
        } = child.wait_with_output().unwrap();
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8(stdout).unwrap(),
            stderr: String::from_utf8(stderr).unwrap(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Run {
        self.run(args, "", &[])
    }
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

const PASSWORD: &str = "correct horse battery staple";

#[test]
fn sign_in_tokens_and_admin_work_through_the_cli() {
    let s = Server::start();
    let cli = Cli::new();

    // Nothing stored yet: no server known, then not signed in.
    cli.cmd(&["whoami"]).fails(2);
    let r = cli.cmd(&["whoami", "--server", &s.url]).fails(20);
    assert!(r.stderr.contains("not signed in"), "{}", r.stderr);

    // A wrong password: 401 → exit 20, nothing stored.
    let r = cli
        .run(
            &[
                "login",
                "--server",
                &s.url,
                "-u",
                "admin",
                "--password-stdin",
            ],
            "not the password\n",
            &[],
        )
        .fails(20);
    assert!(
        r.stderr.contains("wrong username or password"),
        "{}",
        r.stderr
    );
    assert!(!cli.credentials().exists());

    // Sign in: the token is stored per server, 0600, and is never printed.
    let login = cli
        .run(
            &[
                "login",
                "--server",
                &format!("{}/", s.url),
                "-u",
                "admin",
                "--password-stdin",
                "--json",
            ],
            &format!("{}\n", s.admin_password),
            &[],
        )
        .ok()
        .json();
    assert_eq!(login["user"]["username"], "admin");
    assert_eq!(login["server"], s.url.as_str());
    assert!(login.get("token").is_none());
    assert_eq!(mode(&cli.credentials()), 0o600);
    assert_eq!(mode(cli.credentials().parent().unwrap()), 0o700);
    let stored: Value = serde_json::from_slice(&std::fs::read(cli.credentials()).unwrap()).unwrap();
    assert_eq!(stored["default_server"], s.url.as_str());
    let session = stored["servers"][s.url.as_str()]["token"]
        .as_str()
        .unwrap()
        .to_string();

    // Later commands find the server and token on their own.
    let me = cli.cmd(&["whoami", "--json"]).ok().json();
    assert_eq!(me["user"]["username"], "admin");
    assert_eq!(me["user"]["is_admin"], true);
    let text = cli.cmd(&["whoami"]).ok().stdout;
    assert!(text.contains("user:") && text.contains("admin"), "{text}");

    // API tokens: create (shown once), use through SEALROOM_TOKEN, list, revoke.
    let t = cli
        .cmd(&["token", "create", "--name", "ci", "--days", "7", "--json"])
        .ok()
        .json();
    let api_token = t["token"].as_str().unwrap().to_string();
    let token_id = t["id"].as_str().unwrap().to_string();
    assert_eq!(t["kind"], "api");
    let me = cli
        .run(&["whoami", "--json"], "", &[("SEALROOM_TOKEN", &api_token)])
        .ok()
        .json();
    assert_eq!(me["user"]["username"], "admin");
    let list = cli.cmd(&["token", "list", "--json"]).ok().json();
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["id"] == token_id.as_str()));
    assert!(!cli
        .cmd(&["token", "list", "--json"])
        .stdout
        .contains(&api_token));
    let table = cli.cmd(&["token", "list"]).ok().stdout;
    assert!(table.starts_with("ID") && table.contains("ci"), "{table}");
    cli.cmd(&["token", "revoke", &token_id]).ok();
    cli.run(&["whoami"], "", &[("SEALROOM_TOKEN", &api_token)])
        .fails(20);
    cli.cmd(&["token", "revoke", &token_id]).fails(22);

    // Organizations, users, sites.
    let org = cli
        .cmd(&["orgs", "create", "Model Co", "--json"])
        .ok()
        .json();
    let org_id = org["id"].as_str().unwrap().to_string();
    assert_eq!(org["name"], "Model Co");
    cli.cmd(&["orgs", "create", "Model Co"]).fails(23);
    let orgs = cli.cmd(&["orgs", "list", "--json"]).ok().json();
    assert!(orgs
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["id"] == org_id.as_str()));
    let table = cli.cmd(&["orgs", "list"]).ok().stdout;
    assert!(
        table
            .lines()
            .any(|l| l.contains(&org_id) && l.contains("Model Co")),
        "{table}"
    );

    let user = cli
        .run(
            &[
                "users",
                "create",
                "--org",
                &org_id,
                "--username",
                "alice",
                "--display-name",
                "Alice A.",
                "--password-stdin",
                "--json",
            ],
            &format!("{PASSWORD}\n"),
            &[],
        )
        .ok()
        .json();
    let alice_id = user["id"].as_str().unwrap().to_string();
    assert_eq!(user["org_id"], org_id.as_str());
    assert_eq!(user["display_name"], "Alice A.");
    // Too short a password: the server refuses it (400 → 24) and makes no user.
    cli.run(
        &[
            "users",
            "create",
            "--org",
            &org_id,
            "--username",
            "bob",
            "--password-stdin",
        ],
        "short\n",
        &[],
    )
    .fails(24);
    let users = cli
        .cmd(&["users", "list", "--org", &org_id, "--json"])
        .ok()
        .json();
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["alice"]);
    // A bad ID is refused before any request; an unknown one is a 404.
    cli.cmd(&["users", "disable", "nope"]).fails(2);
    cli.cmd(&["users", "disable", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"])
        .fails(22);

    let site = cli
        .cmd(&[
            "sites",
            "create",
            "--org",
            &org_id,
            "Hospital site",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(site["site"]["org_id"], org_id.as_str());
    assert!(site["token"].as_str().unwrap().starts_with("srt_"));
    // Human output: the token alone on stdout, the explanation on stderr.
    let r = cli
        .cmd(&["sites", "create", "--org", &org_id, "Second site"])
        .ok();
    assert_eq!(r.stdout.lines().count(), 1);
    assert!(r.stdout.starts_with("srt_") && r.stderr.contains("shown only now"));

    // Another user (in another config dir): not an admin → 403 → 21.
    let alice = Cli::new();
    alice
        .run(
            &[
                "login",
                "--server",
                &s.url,
                "--username",
                "alice",
                "--password-stdin",
            ],
            &format!("{PASSWORD}\n"),
            &[],
        )
        .ok();
    let r = alice.cmd(&["orgs", "list"]).fails(21);
    assert!(r.stderr.contains("forbidden"), "{}", r.stderr);
    alice.cmd(&["whoami", "--json"]).ok();
    // Disabled by the admin: its session stops working (token cache: 2 s).
    cli.cmd(&["users", "disable", &alice_id]).ok();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    alice.cmd(&["whoami"]).fails(20);
    cli.cmd(&["users", "enable", &alice_id, "--json"]).ok();

    // Sign out: the session is revoked on the server and forgotten here.
    let out = cli.cmd(&["logout", "--json"]).ok().json();
    assert_eq!(out["revoked"], true);
    let stored: Value = serde_json::from_slice(&std::fs::read(cli.credentials()).unwrap()).unwrap();
    assert!(stored["servers"].as_object().unwrap().is_empty());
    cli.cmd(&["whoami", "--server", &s.url]).fails(20);
    cli.run(
        &["whoami", "--server", &s.url],
        "",
        &[("SEALROOM_TOKEN", &session)],
    )
    .fails(20);
    cli.cmd(&["logout", "--server", &s.url]).fails(20);
}

#[test]
fn an_api_token_can_be_stored_with_login_with_token() {
    let s = Server::start();
    let admin = sealroom_client::Client::new(&s.url).unwrap();
    let session = admin.login("admin", &s.admin_password).unwrap();
    let api = admin
        .with_token(&session.token)
        .create_token("laptop", None)
        .unwrap();
    let cli = Cli::new();
    cli.run(
        &["login", "--server", &s.url, "--with-token"],
        &format!("{}\n", api.token),
        &[],
    )
    .ok();
    let me = cli.cmd(&["whoami", "--json"]).ok().json();
    assert_eq!(me["user"]["username"], "admin");
    // A wrong token is refused and not stored.
    let other = Cli::new();
    other
        .run(
            &["login", "--server", &s.url, "--with-token"],
            "sr_wrong\n",
            &[],
        )
        .fails(20);
    assert!(!other.credentials().exists());
}

#[test]
fn unreachable_servers_and_bad_urls_have_their_own_codes() {
    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let cli = Cli::new();
    let r = cli
        .run(
            &["login", "--server", &url, "-u", "admin", "--password-stdin"],
            "whatever-password\n",
            &[],
        )
        .fails(27);
    assert!(r.stderr.contains(&url), "{}", r.stderr);
    let r = cli
        .run(
            &["whoami", "--server", &url],
            "",
            &[("SEALROOM_TOKEN", "sr_x")],
        )
        .fails(27);
    assert!(r.stderr.contains("cannot reach"), "{}", r.stderr);
    cli.run(
        &["whoami", "--server", "ftp://example"],
        "",
        &[("SEALROOM_TOKEN", "x")],
    )
    .fails(2);
    cli.run(
        &["whoami"],
        "",
        &[("SEALROOM_SERVER", &url), ("SEALROOM_TOKEN", "sr_x")],
    )
    .fails(27);
    // An https server with a CA file that holds no certificate: refused before connecting.
    let ca = cli.config.path().join("empty.pem");
    std::fs::write(&ca, "nothing\n").unwrap();
    cli.run(
        &[
            "whoami",
            "--server",
            "https://127.0.0.1:1",
            "--ca-cert",
            ca.to_str().unwrap(),
        ],
        "",
        &[("SEALROOM_TOKEN", "x")],
    )
    .fails(2);
}

#[test]
fn routes_missing_on_the_server_are_reported_as_not_found() {
    // Before the projects routes are merged the server has no such route, after they are the
    // project is unknown: a 404 with the server's JSON error either way → exit 22.
    let s = Server::start();
    let cli = Cli::new();
    cli.run(
        &[
            "login",
            "--server",
            &s.url,
            "-u",
            "admin",
            "--password-stdin",
        ],
        &format!("{}\n", s.admin_password),
        &[],
    )
    .ok();
    let r = cli
        .cmd(&["projects", "show", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"])
        .fails(22);
    assert!(r.stderr.contains("not_found"), "{}", r.stderr);
}

#[test]
fn package_seal_seals_the_chosen_files_and_writes_the_manifest() {
    let cli = Cli::new();
    let work = tempfile::tempdir().unwrap();
    let pkg = work.path().join("pkg");
    std::fs::create_dir_all(pkg.join("model")).unwrap();
    std::fs::write(
        pkg.join("Dockerfile"),
        "FROM python:3.12\nENTRYPOINT [\"python\", \"/app/train.py\"]\n",
    )
    .unwrap();
    std::fs::write(pkg.join("train.py"), "print('secret sauce')\n").unwrap();
    std::fs::write(pkg.join("model/w.bin"), vec![42u8; 100_000]).unwrap();
    std::fs::write(pkg.join("README"), "plain\n").unwrap();
    let cek = work.path().join("ao.key");
    cli.cmd(&["keys", "cek", "-o", cek.to_str().unwrap()]).ok();
    let out = work.path().join("sealed");
    let r = cli
        .cmd(&[
            "package",
            "seal",
            pkg.to_str().unwrap(),
            "--cek",
            cek.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--secret",
            "*.py",
            "--secret",
            "model/**",
            "--secret",
            "Dockerfile",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(r["sealed"], serde_json::json!(["model/w.bin", "train.py"]));
    assert_eq!(r["plaintext_files"], 2);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("secrets.json")).unwrap()).unwrap();
    assert_eq!(
        manifest,
        serde_json::json!({"files": ["model/w.bin", "train.py"]})
    );
    // The Dockerfile stays plaintext even when a glob names it; sealed files are sealed.
    assert_eq!(
        std::fs::read(out.join("Dockerfile")).unwrap(),
        std::fs::read(pkg.join("Dockerfile")).unwrap()
    );
    assert!(std::fs::read(out.join("train.py"))
        .unwrap()
        .starts_with(b"SEALROOM"));
    let back = work.path().join("train.py");
    cli.cmd(&[
        "decrypt",
        "--cek",
        cek.to_str().unwrap(),
        out.join("train.py").to_str().unwrap(),
        "-o",
        back.to_str().unwrap(),
    ])
    .ok();
    assert_eq!(std::fs::read(&back).unwrap(), b"print('secret sauce')\n");
    // Again into the same place: refused (2); nothing matching: refused (2).
    cli.cmd(&[
        "package",
        "seal",
        pkg.to_str().unwrap(),
        "--cek",
        cek.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--secret",
        "*.py",
    ])
    .fails(2);
    cli.cmd(&[
        "package",
        "seal",
        pkg.to_str().unwrap(),
        "--cek",
        cek.to_str().unwrap(),
        "--out",
        work.path().join("other").to_str().unwrap(),
        "--secret",
        "*.nothing",
    ])
    .fails(2);
    assert!(!work.path().join("other").exists());
    // Uploading a plaintext package is refused locally, before any request (exit 2).
    let dummy = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    let r = cli
        .run(
            &[
                "artifacts",
                "upload-package",
                "--artifact",
                dummy,
                "--tag",
                "v1",
                pkg.to_str().unwrap(),
            ],
            "",
            &[
                ("SEALROOM_SERVER", "http://127.0.0.1:1"),
                ("SEALROOM_TOKEN", "sr_x"),
            ],
        )
        .fails(2);
    assert!(r.stderr.contains("secrets.json"), "{}", r.stderr);
    // A manifest that names a plaintext file: not sealed (14).
    std::fs::write(out.join("README"), "now listed\n").unwrap();
    std::fs::write(
        out.join("secrets.json"),
        r#"{"files":["README","train.py"]}"#,
    )
    .unwrap();
    cli.run(
        &[
            "artifacts",
            "upload-package",
            "--artifact",
            dummy,
            "--tag",
            "v1",
            out.to_str().unwrap(),
        ],
        "",
        &[
            ("SEALROOM_SERVER", "http://127.0.0.1:1"),
            ("SEALROOM_TOKEN", "sr_x"),
        ],
    )
    .fails(14);
}

/// `--ca-cert` against a real TLS server (`openssl s_server -www`, which answers every request
/// with an HTML page): with the right CA the handshake succeeds and the non-API answer is exit
/// 26; with another CA, or the system bundle, the certificate is refused: exit 27.
#[test]
fn https_servers_are_verified_against_the_given_ca() {
    let have_openssl = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_openssl {
        eprintln!("\n*** SKIPPING the HTTPS test: no openssl binary ***\n");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str| d.path().join(n).to_str().unwrap().to_string();
    let ossl = |args: &[&str]| {
        let o = Command::new("openssl").args(args).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    for (ca, key, subj) in [
        ("ca.pem", "ca.key", "/CN=Test CA"),
        ("other.pem", "other.key", "/CN=Other CA"),
    ] {
        let mut a = vec!["req", "-x509"];
        a.extend(ec);
        let (kp, cp) = (p(key), p(ca));
        a.extend(["-keyout", &kp, "-out", &cp, "-days", "1", "-subj", subj]);
        ossl(&a);
    }
    let mut a = vec!["req"];
    a.extend(ec);
    let (lk, lc) = (p("leaf.key"), p("leaf.csr"));
    a.extend(["-keyout", &lk, "-out", &lc, "-subj", "/CN=localhost"]);
    ossl(&a);
    std::fs::write(
        d.path().join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    ossl(&[
        "x509",
        "-req",
        "-in",
        &p("leaf.csr"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-out",
        &p("leaf.pem"),
        "-days",
        "1",
        "-extfile",
        &p("ext.cnf"),
    ]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
            &p("leaf.pem"),
            "-key",
            &p("leaf.key"),
            "-www",
            "-quiet",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let url = format!("https://127.0.0.1:{port}");
    let cli = Cli::new();
    let tok = [("SEALROOM_TOKEN", "sr_x")];
    let r = cli.run(
        &["whoami", "--server", &url, "--ca-cert", &p("ca.pem")],
        "",
        &tok,
    );
    let other = cli.run(
        &["whoami", "--server", &url, "--ca-cert", &p("other.pem")],
        "",
        &tok,
    );
    let ssl_file = [
        ("SEALROOM_TOKEN", "sr_x"),
        ("SSL_CERT_FILE", "/nonexistent/ca.pem"),
    ];
    let system = cli.run(&["whoami", "--server", &url], "", &ssl_file);
    let env_ca = cli.run(
        &["whoami", "--server", &url],
        "",
        &[
            ("SEALROOM_TOKEN", "sr_x"),
            ("SEALROOM_CA_CERT", &p("ca.pem")),
        ],
    );
    let _ = server.kill();
    let _ = server.wait();
    let r = r.fails(26);
    assert!(r.stderr.contains("unexpected response"), "{}", r.stderr);
    let other = other.fails(27);
    assert!(
        other
            .stderr
            .contains("invalid peer certificate: UnknownIssuer"),
        "{}",
        other.stderr
    );
    // SSL_CERT_FILE names the system bundle; a missing one is an error before connecting.
    system.fails(16);
    env_ca.fails(26);
}
