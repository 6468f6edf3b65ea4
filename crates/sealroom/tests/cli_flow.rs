//! The whole collaboration through the `sealroom` binary against a real server
//! (`sealroom_server::app::start` on a loopback port: SQLite, local blobs, the file key provider,
//! the sweeper), each party with its own `XDG_CONFIG_HOME`:
//!
//! admin: organizations, users, a site, the project → AO and DS: KEK download, CEK, wrap, WCEK
//! upload → AO: algorithm package (sealed, uploaded, every upload step passed) and validation
//! criteria → DS: acceptance, a sealed CSV in the built-in storage, a signed URL, the dataset
//! version, certification → AO: run configuration, run request → DS: notification, initiation →
//! both: status, chat, search → admin: the audit log → DS: a rejection → AO: its notification.
//! Along the way, bad inputs get their documented exit codes and messages that name the problem.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The server, in-process, on a loopback port.
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
        let opts = sealroom_server::app::ServerOptions::new(
            data_dir.path().to_path_buf(),
            "127.0.0.1:0".parse().unwrap(),
        );
        let started = runtime.block_on(sealroom_server::app::start(opts)).unwrap();
        let admin_password = started
            .admin_password
            .as_ref()
            .expect("the first start makes the admin")
            .to_string();
        Server {
            url: started.url.clone(),
            admin_password,
            _data_dir: data_dir,
            runtime: Some(runtime),
        }
    }
}

/// What one command did.
struct Run {
    args: String,
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "{}: stdout is not one JSON document ({e}): {:?}",
                self.args, self.stdout
            )
        })
    }

    #[track_caller]
    fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "{}\nstderr: {}\nstdout: {}",
            self.args, self.stderr, self.stdout
        );
        self
    }

    /// Fails with `code`, an `error: ` line on stderr that contains every one of `words`, and
    /// nothing on stdout.
    #[track_caller]
    fn fails(self, code: i32, words: &[&str]) -> Run {
        assert_eq!(
            self.code, code,
            "{}: expected exit {code}\nstderr: {}\nstdout: {}",
            self.args, self.stderr, self.stdout
        );
        assert!(
            self.stderr.starts_with("error: "),
            "{}: {}",
            self.args,
            self.stderr
        );
        for w in words {
            assert!(
                self.stderr.contains(w),
                "{}: {w:?} not in {}",
                self.args,
                self.stderr
            );
        }
        assert!(self.stdout.is_empty(), "{}: {}", self.args, self.stdout);
        self
    }
}

/// One person at their own terminal: their own config directory (stored token), no inherited
/// Sealroom environment.
struct Cli {
    name: &'static str,
    config: tempfile::TempDir,
}

const PASSWORD: &str = "correct horse battery staple";

impl Cli {
    fn new(name: &'static str) -> Cli {
        Cli {
            name,
            config: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str], stdin: &str) -> Run {
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
            args: format!("{}$ sealroom {}", self.name, args.join(" ")),
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8(stdout).unwrap(),
            stderr: String::from_utf8(stderr).unwrap(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Run {
        self.run(args, "")
    }

    /// Runs with `--json`, expects success, returns the parsed output.
    #[track_caller]
    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        self.cmd(&a).ok().json()
    }

    /// Runs without `--json`, expects success, returns stdout.
    #[track_caller]
    fn text(&self, args: &[&str]) -> String {
        self.cmd(args).ok().stdout
    }

    #[track_caller]
    fn login(&self, server: &str, username: &str, password: &str) -> Value {
        self.run(
            &[
                "login",
                "--server",
                server,
                "-u",
                username,
                "--password-stdin",
                "--json",
            ],
            &format!("{password}\n"),
        )
        .ok()
        .json()
    }
}

fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A user of `org` made by the admin, signed in on its own CLI.
#[track_caller]
fn user(admin: &Cli, server: &str, org: &str, name: &'static str, display: &str) -> Cli {
    let u = admin
        .run(
            &[
                "users",
                "create",
                "--org",
                org,
                "--username",
                name,
                "--display-name",
                display,
                "--password-stdin",
                "--json",
            ],
            &format!("{PASSWORD}\n"),
        )
        .ok()
        .json();
    assert_eq!(u["username"], name);
    assert_eq!(u["org_id"], org);
    assert_eq!(u["is_admin"], false);
    let cli = Cli::new(name);
    let login = cli.login(server, name, PASSWORD);
    assert_eq!(login["user"]["username"], name);
    cli
}

/// A party's keys: KEK download, a fresh CEK, the WCEK, its upload. Returns the CEK's path.
#[track_caller]
fn upload_keys(cli: &Cli, project: &str, role: &str, dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let kek = cli.json(&[
        "project-keys",
        "kek",
        "--project",
        project,
        "--role",
        role,
        "-o",
        p(dir),
    ]);
    let kek_path = PathBuf::from(s(&kek["path"]));
    let kek_name = kek_path.file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        kek_name.starts_with("chest-x-ray-trial-") && kek_name.ends_with(&format!("-{role}.der")),
        "{kek_name}"
    );
    assert_eq!(kek_path.parent().unwrap(), dir);
    let der = std::fs::read(&kek_path).unwrap();
    assert_eq!(kek["bytes"], der.len());
    assert!(der.len() > 500, "an RSA-4096 SPKI DER");

    let cek = dir.join("cek.key");
    let wcek = dir.join("wcek.key.bkenc");
    cli.cmd(&["keys", "cek", "-o", p(&cek)]).ok();
    cli.cmd(&[
        "keys",
        "wrap",
        "--kek",
        p(&kek_path),
        "--cek",
        p(&cek),
        "-o",
        p(&wcek),
    ])
    .ok();
    let id = cli.json(&["keys", "id", p(&cek)]);
    let v = cli.json(&[
        "project-keys",
        "wcek",
        "--project",
        project,
        "--role",
        role,
        p(&wcek),
    ]);
    assert_eq!(v["version"], 1);
    assert_eq!(v["is_latest"], true);
    assert_eq!(v["project_id"], project);
    assert_eq!(
        v["cek_key_id"], id["key_id"],
        "the server names the CEK as sealed headers do"
    );
    let list = cli.json(&[
        "project-keys",
        "wceks",
        "--project",
        project,
        "--role",
        role,
    ]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["fingerprint"], v["fingerprint"]);
    cek
}

#[test]
fn the_whole_collaboration_works_through_the_cli() {
    let srv = Server::start();
    let url = srv.url.as_str();
    let work = tempfile::tempdir().unwrap();
    let w = |name: &str| work.path().join(name);

    // ---- the admin -------------------------------------------------------------------------
    let admin = Cli::new("admin");
    admin
        .run(
            &["login", "--server", url, "-u", "admin", "--password-stdin"],
            "not the password\n",
        )
        .fails(20, &["wrong username or password", "unauthenticated"]);
    let login = admin.login(url, "admin", &srv.admin_password);
    assert_eq!(login["user"]["is_admin"], true);

    let ao_org = admin.json(&["orgs", "create", "Model Co"]);
    assert_eq!(ao_org["name"], "Model Co");
    let ao_org = s(&ao_org["id"]);
    let ds_org = s(&admin.json(&["orgs", "create", "General Hospital"])["id"]);
    let other_org = s(&admin.json(&["orgs", "create", "Other Lab"])["id"]);
    admin
        .cmd(&["orgs", "create", "Model Co"])
        .fails(23, &["already_exists", "HTTP 409"]);
    let orgs = admin.text(&["orgs", "list"]);
    assert!(orgs.starts_with("ID "), "{orgs}");
    assert!(
        orgs.contains("Model Co") && orgs.contains(&ds_org),
        "{orgs}"
    );

    let alice = user(&admin, url, &ao_org, "alice", "Alice Algo");
    let dave = user(&admin, url, &ds_org, "dave", "Dave Data");
    let olga = user(&admin, url, &other_org, "olga", "Olga Other");
    let users = admin.json(&["users", "list", "--org", &ds_org]);
    assert_eq!(users.as_array().unwrap().len(), 1);
    assert_eq!(users[0]["display_name"], "Dave Data");

    let site = admin.json(&["sites", "create", "--org", &ds_org, "Hospital site"]);
    assert_eq!(site["site"]["org_id"], ds_org.as_str());
    assert_eq!(site["site"]["name"], "Hospital site");
    assert!(!s(&site["token"]).is_empty());

    // Only the admin creates projects.
    alice
        .cmd(&[
            "projects",
            "create",
            "--name",
            "Mine",
            "--technology",
            "simulated",
            "--ao",
            &ao_org,
            "--ds",
            &ds_org,
        ])
        .fails(21, &["forbidden", "HTTP 403"]);
    let page = admin.json(&[
        "projects",
        "create",
        "--name",
        "Chest X-ray Trial",
        "--description",
        "Validate a pneumonia model on hospital films",
        "--technology",
        "simulated",
        "--ao",
        &ao_org,
        "--ds",
        &ds_org,
    ]);
    let project = s(&page["project"]["id"]);
    assert_eq!(page["project"]["state"], "active");
    assert_eq!(page["project"]["technology"], "simulated");
    assert_eq!(page["members"].as_array().unwrap().len(), 2);
    assert_eq!(page["keys"].as_array().unwrap().len(), 2);
    assert!(page["my_role"].is_null());

    // ---- both parties: keys ----------------------------------------------------------------
    let list = alice.json(&["projects", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], project.as_str());
    assert_eq!(list[0]["my_role"], "algorithm_owner");
    let text = dave.text(&["projects", "list"]);
    assert!(
        text.contains("Chest X-ray Trial") && text.contains("data_steward"),
        "{text}"
    );
    let ao_cek = upload_keys(&alice, &project, "ao", &w("ao"));
    let ds_cek = upload_keys(&dave, &project, "ds", &w("ds"));
    // A WCEK wrapped to the other role's KEK does not unwrap: refused, nothing stored.
    dave.cmd(&[
        "project-keys",
        "wcek",
        "--project",
        &project,
        "--role",
        "ds",
        p(&w("ao").join("wcek.key.bkenc")),
    ])
    .fails(24, &["wcek_does_not_unwrap"]);
    let shown = alice.text(&["projects", "show", &project]);
    for needle in [
        "Chest X-ray Trial",
        "algorithm_owner",
        "General Hospital",
        "v1 ",
    ] {
        assert!(shown.contains(needle), "{needle:?} not in {shown}");
    }
    let page = dave.json(&["projects", "show", &project]);
    assert_eq!(page["my_role"], "data_steward");
    assert_eq!(page["latest_wceks"]["algorithm_owner"]["version"], 1);
    assert_eq!(page["latest_wceks"]["data_steward"]["version"], 1);

    // Another organization's user learns nothing about the project.
    olga.cmd(&["projects", "show", &project])
        .fails(22, &["not found", "not_found", "HTTP 404"]);
    assert_eq!(olga.json(&["projects", "list"]), Value::Array(vec![]));

    // ---- the AO: algorithm package and criteria ---------------------------------------------
    let algo = alice.json(&[
        "artifacts",
        "create",
        "--project",
        &project,
        "--kind",
        "algorithm",
        "--name",
        "Pneumonia model",
        "--algorithm-type",
        "validation",
    ]);
    assert_eq!(algo["kind"], "algorithm");
    assert_eq!(algo["project_id"], project.as_str());
    let algo = s(&algo["id"]);
    dave.cmd(&[
        "artifacts",
        "create",
        "--project",
        &project,
        "--kind",
        "algorithm",
        "--name",
        "Not mine",
        "--algorithm-type",
        "training",
    ])
    .fails(21, &["forbidden"]);

    let pkg = w("pkg");
    std::fs::create_dir_all(pkg.join("src")).unwrap();
    std::fs::create_dir_all(pkg.join("model")).unwrap();
    std::fs::write(
        pkg.join("Dockerfile"),
        "FROM python:3.12-slim\nCOPY . /app\nENTRYPOINT [\"python3\", \"/app/src/main.py\"]\n",
    )
    .unwrap();
    std::fs::write(pkg.join("src/main.py"), "print('validating')\n").unwrap();
    std::fs::write(pkg.join("model/weights.bin"), vec![7u8; 100_000]).unwrap();
    std::fs::write(pkg.join("README.txt"), "plaintext notes\n").unwrap();
    let sealed_pkg = w("pkg.sealed");
    alice
        .cmd(&[
            "package",
            "seal",
            p(&pkg),
            "--cek",
            p(&ao_cek),
            "--out",
            p(&sealed_pkg),
            "--secret",
            "src/*.py",
            "--secret",
            "model/**",
        ])
        .ok();
    let uploaded = alice.json(&[
        "artifacts",
        "upload-package",
        "--artifact",
        &algo,
        "--tag",
        "v1",
        "--description",
        "first model",
        p(&sealed_pkg),
    ]);
    assert_eq!(uploaded["version"], 1);
    assert_eq!(uploaded["tag"], "v1");
    let algo_v1 = s(&uploaded["id"]);
    let versions = alice.json(&["artifacts", "versions", &algo]);
    let v = &versions[0];
    assert_eq!(v["id"], algo_v1.as_str());
    assert_eq!(v["detail"]["kind"], "algorithm");
    let steps = v["detail"]["upload_steps"].as_array().unwrap();
    let names: Vec<String> = steps.iter().map(|st| s(&st["step"])).collect();
    assert_eq!(
        names,
        [
            "dockerfile_present",
            "secrets_manifest_present",
            "wcek_present",
            "file_validation_succeeded"
        ]
    );
    for st in steps {
        assert_eq!(st["status"], "passed", "{st}");
    }
    assert_eq!(
        v["detail"]["wcek_fingerprint"],
        page["latest_wceks"]["algorithm_owner"]["fingerprint"]
    );
    assert_eq!(s(&v["detail"]["workload_digest"]).len(), 64);
    assert!(v["blob"]["size"].as_u64().unwrap() > 100_000);
    let text = alice.text(&["artifacts", "versions", &algo]);
    assert!(
        text.contains("v1") && text.contains("file_validation_succeeded=passed"),
        "{text}"
    );
    // The same tag again: refused.
    alice
        .cmd(&[
            "artifacts",
            "upload-package",
            "--artifact",
            &algo,
            "--tag",
            "v1",
            p(&sealed_pkg),
        ])
        .fails(23, &["already_exists"]);

    let crit = alice.json(&[
        "artifacts",
        "create",
        "--project",
        &project,
        "--kind",
        "validation_criteria",
        "--name",
        "Acceptance",
    ]);
    let crit = s(&crit["id"]);
    let crit_file = w("criteria.json");
    let criteria_text = "{\n  \"accuracy\": {\"type\": \"float\", \"min\": 0, \"max\": 1, \"required\": true},\n  \"n\": {\"type\": \"integer\", \"min\": 1}\n}\n";
    std::fs::write(&crit_file, criteria_text).unwrap();
    let cv = alice.json(&[
        "artifacts",
        "add-criteria",
        "--artifact",
        &crit,
        "--tag",
        "v1",
        p(&crit_file),
    ]);
    assert_eq!(cv["detail"]["kind"], "validation_criteria");
    assert_eq!(
        cv["detail"]["criteria_json"], criteria_text,
        "the file's text is kept verbatim"
    );
    assert_eq!(cv["detail"]["acceptances"], Value::Array(vec![]));
    let crit_v1 = s(&cv["id"]);
    let bad_crit = w("bad-criteria.json");
    std::fs::write(&bad_crit, r#"{"accuracy": {"type": "floaty"}}"#).unwrap();
    alice
        .cmd(&[
            "artifacts",
            "add-criteria",
            "--artifact",
            &crit,
            "--tag",
            "v2",
            p(&bad_crit),
        ])
        .fails(24, &["invalid_criteria"]);

    // The data specification (a PDF) the DS's data must follow.
    let spec = alice.json(&[
        "artifacts",
        "create",
        "--project",
        &project,
        "--kind",
        "data_specification",
        "--name",
        "Film format",
    ]);
    let spec = s(&spec["id"]);
    let spec_pdf = w("film-format.pdf");
    std::fs::write(&spec_pdf, b"%PDF-1.7\n% the film format\n%%EOF\n").unwrap();
    let not_pdf = w("film-format.txt");
    std::fs::write(&not_pdf, "just text").unwrap();
    alice
        .cmd(&[
            "artifacts",
            "upload",
            "--artifact",
            &spec,
            "--tag",
            "v1",
            p(&not_pdf),
        ])
        .fails(24, &["invalid_upload"]);
    let sv = alice.json(&[
        "artifacts",
        "upload",
        "--artifact",
        &spec,
        "--tag",
        "v1",
        p(&spec_pdf),
    ]);
    assert_eq!(sv["detail"]["kind"], "data_specification");
    assert_eq!(sv["blob"]["file_name"], "film-format.pdf");
    assert_eq!(
        sv["blob"]["size"],
        std::fs::metadata(&spec_pdf).unwrap().len()
    );
    let spec_v1 = s(&sv["id"]);

    // ---- the DS: acceptance, sealed data in storage, the dataset ---------------------------
    // The specification, downloaded; the AO's package is not the DS's to download.
    let dl = w("dl");
    std::fs::create_dir_all(&dl).unwrap();
    let got = dave.json(&["artifacts", "download", &spec_v1, "-o", p(&dl)]);
    assert_eq!(got["path"], p(&dl.join("film-format.pdf")));
    assert_eq!(
        std::fs::read(dl.join("film-format.pdf")).unwrap(),
        std::fs::read(&spec_pdf).unwrap()
    );
    dave.cmd(&["artifacts", "download", &spec_v1, "-o", p(&dl)])
        .fails(2, &["film-format.pdf", "already exists"]);
    let got = dave.json(&["artifacts", "download", &crit_v1, "-o", p(&dl)]);
    let crit_path = dl.join(format!("criteria-{crit_v1}.json"));
    assert_eq!(got["path"], p(&crit_path));
    assert_eq!(std::fs::read_to_string(&crit_path).unwrap(), criteria_text);
    dave.cmd(&[
        "artifacts",
        "download",
        &algo_v1,
        "-o",
        p(&dl.join("pkg.tar")),
    ])
    .fails(21, &["forbidden"]);
    assert!(
        !dl.join("pkg.tar").exists(),
        "nothing is left of a refused download"
    );
    let got = alice.json(&[
        "artifacts",
        "download",
        &algo_v1,
        "-o",
        p(&dl.join("pkg.tar")),
    ]);
    assert_eq!(got["bytes"], v["blob"]["size"]);

    // The attestation report on that specification.
    let report = dave.json(&[
        "artifacts",
        "create",
        "--project",
        &project,
        "--kind",
        "attestation_report",
        "--name",
        "Conformance",
    ]);
    let report_pdf = w("conformance.pdf");
    std::fs::write(&report_pdf, b"%PDF-1.7\n% conforms\n%%EOF\n").unwrap();
    let rv = dave.json(&[
        "artifacts",
        "upload",
        "--artifact",
        &s(&report["id"]),
        "--tag",
        "2024-03",
        "--description",
        "March audit",
        "--data-spec",
        &spec_v1,
        p(&report_pdf),
    ]);
    assert_eq!(rv["detail"]["kind"], "attestation_report");
    assert_eq!(rv["detail"]["data_specification_version"], spec_v1.as_str());
    assert_eq!(rv["description"], "March audit");
    let report_v1 = s(&rv["id"]);

    let accepted = dave.json(&["artifacts", "accept", &crit_v1]);
    assert_eq!(accepted["id"], crit_v1.as_str());
    assert_eq!(
        accepted["detail"]["acceptances"].as_array().unwrap().len(),
        1
    );
    assert_eq!(
        accepted["detail"]["acceptances"][0]["org_id"],
        ds_org.as_str()
    );

    let csv = w("films.csv");
    let mut rows = String::from("patient,label\n");
    for i in 0..2000 {
        rows.push_str(&format!("{i},{}\n", i % 2));
    }
    std::fs::write(&csv, rows).unwrap();
    let sealed_csv = w("films.csv.sealed");
    dave.cmd(&[
        "encrypt",
        "--cek",
        p(&ds_cek),
        p(&csv),
        "-o",
        p(&sealed_csv),
    ])
    .ok();
    // Plaintext is refused by the storage, nothing stored.
    dave.cmd(&[
        "storage",
        "put",
        "--project",
        &project,
        "--prefix",
        "data/v1",
        p(&csv),
    ])
    .fails(24, &["invalid_upload"]);
    let put = dave.json(&[
        "storage",
        "put",
        "--project",
        &project,
        "--prefix",
        "data/v1",
        p(&sealed_csv),
    ]);
    assert_eq!(put[0]["path"], "data/v1/films.csv.sealed");
    assert_eq!(
        put[0]["size"],
        std::fs::metadata(&sealed_csv).unwrap().len()
    );
    let stored = dave.json(&["storage", "list", "--project", &project]);
    assert_eq!(stored.as_array().unwrap().len(), 1, "{stored}");
    assert_eq!(stored[0]["path"], "data/v1/films.csv.sealed");
    alice
        .cmd(&["storage", "list", "--project", &project])
        .fails(21, &["forbidden"]);
    let signed = dave.json(&[
        "storage",
        "sign",
        "--project",
        &project,
        "--prefix",
        "data/v1/",
    ]);
    let data_url = s(&signed["url"]);
    assert!(data_url.starts_with(url), "{data_url}");
    assert!(
        data_url.contains("sp=l") && data_url.contains("sig="),
        "{data_url}"
    );
    assert_eq!(signed["permission"], "list");
    let short = dave.json(&[
        "storage",
        "sign",
        "--project",
        &project,
        "--prefix",
        "data/v1/",
        "--hours",
        "1",
    ]);

    let ds_art = dave.json(&[
        "artifacts",
        "create",
        "--project",
        &project,
        "--kind",
        "dataset",
        "--name",
        "Chest films",
    ]);
    let ds_art = s(&ds_art["id"]);
    let add_dataset = |tag: &str, url: &str| {
        dave.cmd(&[
            "artifacts",
            "add-dataset",
            "--artifact",
            &ds_art,
            "--tag",
            tag,
            "--url",
            url,
            "--json",
        ])
    };
    add_dataset("v1", &s(&short["url"])).fails(24, &["dataset_url_expired", "24 hours"]);
    add_dataset("v1", "https://example.org/films.csv").fails(24, &["dataset_url_invalid"]);
    let dv = dave
        .cmd(&[
            "artifacts",
            "add-dataset",
            "--artifact",
            &ds_art,
            "--tag",
            "v1",
            "--url",
            &data_url,
            "--data-spec",
            &spec_v1,
            "--attestation",
            &report_v1,
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(dv["detail"]["data_specification_version"], spec_v1.as_str());
    assert_eq!(
        dv["detail"]["attestation_report_version"],
        report_v1.as_str()
    );
    assert_eq!(
        dv["detail"]["wcek_fingerprint"],
        page["latest_wceks"]["data_steward"]["fingerprint"]
    );
    assert_eq!(dv["detail"]["kind"], "dataset");
    assert_eq!(dv["detail"]["location"]["url"], data_url.as_str());
    assert_eq!(dv["detail"]["location"]["status"], "valid");
    assert!(dv["detail"]["certification"].is_null());
    let ds_v1 = s(&dv["id"]);
    let certified = dave.json(&["artifacts", "certify", &ds_v1]);
    assert_eq!(certified["id"], ds_v1.as_str());
    assert!(
        certified["detail"]["certification"].is_object(),
        "{certified}"
    );
    // The AO sees the dataset, not its URL.
    let seen = alice.json(&["artifacts", "version", &ds_v1]);
    assert!(seen["detail"]["location"].get("url").is_none(), "{seen}");
    assert_eq!(seen["detail"]["location"]["status"], "valid");
    let text = dave.text(&["artifacts", "versions", &ds_art]);
    assert!(
        text.contains("certified") && text.contains("(valid)"),
        "{text}"
    );

    // ---- the AO: configuration and run request ----------------------------------------------
    let config_args = |name: &'static str, dataset: &str| -> Vec<String> {
        [
            "run-configs",
            "create",
            "--project",
            &project,
            "--name",
            name,
            "--algorithm-version",
            &algo_v1,
            "--dataset-version",
            dataset,
            "--criteria-version",
            &crit_v1,
        ]
        .iter()
        .map(|a| a.to_string())
        .collect()
    };
    let args = config_args("Validation", &ds_v1);
    let rc = alice.json(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(rc["name"], "Validation");
    assert_eq!(rc["algorithm_version_id"], algo_v1.as_str());
    assert_eq!(rc["dataset_version_id"], ds_v1.as_str());
    assert_eq!(rc["criteria_version_id"], crit_v1.as_str());
    let rc = s(&rc["id"]);
    let args = config_args("Again", &ds_v1);
    alice
        .cmd(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .fails(23, &["duplicate_run_configuration"]);
    let text = dave.text(&["run-configs", "list", "--project", &project]);
    assert!(text.contains(&rc) && text.contains("Validation"), "{text}");

    alice
        .cmd(&["runs", "request", "--config", &rc, "--param", "2fast=1"])
        .fails(2, &["2fast", "must start with a letter"]);
    alice
        .cmd(&[
            "runs",
            "request",
            "--config",
            &rc,
            "--param",
            "ESCROW_RUN_ID=x",
        ])
        .fails(2, &["ESCROW_RUN_ID", "reserved"]);
    alice
        .cmd(&["runs", "request", "--config", &rc, "--vcpus", "3"])
        .fails(24, &["invalid_compute_size"]);
    let run = alice.json(&[
        "runs",
        "request",
        "--config",
        &rc,
        "--param",
        "threshold=0.5",
        "--vcpus",
        "2",
        "--ram-gib",
        "4",
    ]);
    assert_eq!(run["state"], "requested");
    assert_eq!(run["run_config_id"], rc.as_str());
    assert_eq!(run["params"][0]["name"], "threshold");
    assert_eq!(run["params"][0]["value"], "0.5");
    assert_eq!(run["compute"]["vcpus"], 2);
    let run = s(&run["id"]);
    alice
        .cmd(&["runs", "request", "--config", &rc])
        .fails(23, &["run_already_open"]);

    // ---- the DS: notification and initiation -----------------------------------------------
    let notes = dave.json(&["notifications"]);
    let note = notes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["run_id"] == run.as_str())
        .unwrap_or_else(|| panic!("no notification of the run: {notes}"));
    assert_eq!(note["kind"], "run_requested");
    assert_eq!(note["read"], false);
    assert_eq!(note["project_id"], project.as_str());
    let text = dave.text(&["notifications", "list"]);
    assert!(text.contains("run_requested"), "{text}");
    let note_id = s(&note["id"]);
    dave.json(&["notifications", "read", &note_id]);
    let notes = dave.json(&["notifications"]);
    assert_eq!(notes[0]["read"], true);
    alice
        .cmd(&["notifications", "read", &note_id])
        .fails(22, &["not_found"]);

    alice
        .cmd(&["runs", "initiate", &run])
        .fails(21, &["forbidden"]);
    let text = dave.text(&["runs", "initiate", &run]);
    assert_eq!(text, format!("initiated run {run} (now initiated)\n"));
    dave.cmd(&["runs", "initiate", &run])
        .fails(23, &["invalid_state_transition", "initiated"]);
    let status = alice.json(&["runs", "status", &run]);
    assert_eq!(status["run"]["state"], "initiated");
    let history = status["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{status}");
    assert_eq!(history[1]["to"], "initiated");
    let text = alice.text(&["runs", "status", &run]);
    for needle in [
        "state:",
        "initiated",
        "threshold=0.5",
        "2 vCPU / 4 GiB",
        "requested",
    ] {
        assert!(text.contains(needle), "{needle:?} not in {text}");
    }
    let runs = dave.json(&["runs", "list", "--project", &project]);
    assert_eq!(runs[0]["id"], run.as_str());

    // ---- both: chat and search -------------------------------------------------------------
    let m = alice.json(&[
        "chat",
        "post",
        "--project",
        &project,
        "Package v1 is up; threshold 0.5 please",
    ]);
    assert_eq!(m["body"], "Package v1 is up; threshold 0.5 please");
    assert_eq!(m["author_name"], "Alice Algo");
    dave.json(&[
        "chat",
        "post",
        "--project",
        &project,
        "Initiated at our site",
    ]);
    let chat = dave.json(&["chat", "list", "--project", &project]);
    let chat = chat.as_array().unwrap();
    assert_eq!(chat.len(), 2);
    assert_eq!(chat[0]["author_name"], "Alice Algo");
    assert_eq!(chat[1]["author_name"], "Dave Data");
    assert_eq!(chat[1]["author_org_id"], ds_org.as_str());
    let text = alice.text(&["chat", "list", "--project", &project]);
    assert!(text.contains("Dave Data: Initiated at our site"), "{text}");
    olga.cmd(&["chat", "post", "--project", &project, "hello?"])
        .fails(22, &["not_found"]);
    alice
        .cmd(&["chat", "post", "--project", &project, "   "])
        .fails(24, &["invalid_request"]);

    let hits = alice.json(&["search", "chest"]);
    assert!(
        hits.as_array()
            .unwrap()
            .iter()
            .any(|h| h["kind"] == "project" && h["id"] == project.as_str()),
        "{hits}"
    );
    let text = dave.text(&["search", "pneumonia"]);
    assert!(text.contains("Pneumonia model"), "{text}");
    assert_eq!(olga.json(&["search", "chest"]), Value::Array(vec![]));
    alice.cmd(&["search", " "]).fails(24, &["invalid_request"]);

    // ---- the admin: the audit log ------------------------------------------------------------
    let audit = admin.json(&["audit", "list", "--limit", "500"]);
    let actions: Vec<String> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| s(&e["action"]))
        .collect();
    for a in [
        "project.create",
        "key.wcek_upload",
        "artifact.version.create",
        "criteria.accept",
        "storage.put",
        "storage.sign",
        "dataset.certify",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} not in {actions:?}");
    }
    assert!(
        audit
            .as_array()
            .unwrap()
            .windows(2)
            .all(|p| p[0]["seq"].as_i64() < p[1]["seq"].as_i64()),
        "in sequence order"
    );
    let text = admin.text(&["audit", "list", "--after", "1", "--limit", "3"]);
    assert!(text.starts_with("SEQ "), "{text}");
    assert_eq!(text.lines().count(), 4, "{text}");
    alice.cmd(&["audit", "list"]).fails(21, &["forbidden"]);

    // ---- the DS rejects a second request; the AO is told why ---------------------------------
    let dv2 = add_dataset("v2", &data_url).ok().json();
    let ds_v2 = s(&dv2["id"]);
    dave.json(&["artifacts", "certify", &ds_v2]);
    let args = config_args("Second", &ds_v2);
    let rc2 = s(&alice.json(&args.iter().map(String::as_str).collect::<Vec<_>>())["id"]);
    let run2 = s(&alice.json(&["runs", "request", "--config", &rc2])["id"]);
    let rejected = dave.json(&["runs", "reject", &run2, "--reason", "wrong dataset version"]);
    assert_eq!(rejected["id"], run2.as_str());
    assert_eq!(rejected["state"], "rejected");
    assert_eq!(rejected["reason"], "wrong dataset version");
    dave.cmd(&["runs", "reject", &run2, "--reason", "again"])
        .fails(23, &["invalid_state_transition"]);
    let notes = alice.json(&["notifications"]);
    let note = notes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["run_id"] == run2.as_str())
        .unwrap_or_else(|| panic!("no rejection notice: {notes}"));
    assert_eq!(note["kind"], "run_rejected");
    assert!(
        s(&note["message"]).contains("wrong dataset version"),
        "{note}"
    );
    let only = alice.json(&["runs", "list", "--project", &project, "--config", &rc2]);
    assert_eq!(only.as_array().unwrap().len(), 1, "{only}");
    assert_eq!(only[0]["id"], run2.as_str());
    let text = alice.text(&["runs", "list", "--project", &project]);
    assert!(
        text.contains("rejected") && text.contains("wrong dataset version"),
        "{text}"
    );

    // ---- the initiated run: logs, outputs, report, cancellation ------------------------------
    let logs = alice.json(&["runs", "logs", &run, "--stream", "stage"]);
    assert_eq!(logs["lines"], Value::Array(vec![]));
    assert_eq!(logs["streams"], serde_json::json!(["stage"]));
    alice
        .cmd(&["runs", "logs", &run, "--stream", "algorithm"])
        .fails(21, &["forbidden"]);
    assert_eq!(alice.json(&["runs", "outputs", &run]), Value::Array(vec![]));
    alice
        .cmd(&["runs", "report", &run])
        .fails(22, &["not_found"]);
    dave.cmd(&["runs", "report", &run])
        .fails(21, &["forbidden"]);
    alice
        .cmd(&["runs", "cancel", &run])
        .fails(21, &["forbidden"]);
    let cancelled = dave.json(&["runs", "cancel", &run]);
    assert_eq!(cancelled["state"], "cancelled");

    // ---- project settings and states ----------------------------------------------------------
    alice
        .cmd(&[
            "projects",
            "settings",
            &project,
            "--algorithm-logs-to-ao",
            "true",
        ])
        .fails(21, &["forbidden"]);
    let set = dave.json(&[
        "projects",
        "settings",
        &project,
        "--algorithm-logs-to-ao",
        "true",
    ]);
    assert_eq!(set["algorithm_logs_to_ao"], true);
    let paused = admin.json(&["projects", "state", &project, "paused"]);
    assert_eq!(paused["state"], "paused");
    alice
        .cmd(&["runs", "request", "--config", &rc])
        .fails(23, &["project_not_active"]);
    let text = admin.text(&["projects", "state", &project, "active"]);
    assert_eq!(text, format!("project {project} is now active\n"));
    let member = admin.json(&[
        "projects",
        "add-member",
        &project,
        "--org",
        &other_org,
        "--role",
        "ds",
    ]);
    assert_eq!(member["org_id"], other_org.as_str());
    assert_eq!(member["role"], "data_steward");
    assert_eq!(olga.json(&["projects", "list"])[0]["id"], project.as_str());

    // ---- IDs are checked before any request; unknown ones are 404 ---------------------------
    alice
        .cmd(&["runs", "status", "not-a-run"])
        .fails(2, &["not-a-run"]);
    alice
        .cmd(&["runs", "status", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"])
        .fails(22, &["not_found"]);
}
