//! `sealroom local-run`: the demo package is compatible; a package whose final report carries a
//! field the criteria do not allow is not; bad input is refused with a clear message.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn local_run(package: &Path, extra: &[&str]) -> Output {
    let demo = repo().join("examples/demo");
    Command::new(env!("CARGO_BIN_EXE_sealroom"))
        .arg("local-run")
        .arg(package)
        .arg("--data")
        .arg(demo.join("data"))
        .arg("--criteria")
        .arg(demo.join("criteria.json"))
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn the_demo_package_is_compatible() {
    let out = local_run(
        &repo().join("examples/demo/algorithm"),
        &["--param", "THRESHOLD=0.5", "--json"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["compatible"], true);
    assert_eq!(v["final_report"]["report"]["accuracy"]["n"], 240);
    assert_eq!(v["progress_reports"], 1);
}

#[test]
fn a_leaky_final_report_is_refused() {
    let pkg = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(repo().join("examples/demo/algorithm/validate.py")).unwrap();
    // The same algorithm, but its final report also carries rows of data.
    let leaky = src.replace(
        "report({\"report\": metrics}, \"Completed\")",
        "report({\"report\": metrics, \"rows\": [\"P0001,45,32.7,82,1\"]}, \"Completed\")",
    );
    assert_ne!(src, leaky);
    std::fs::write(pkg.path().join("validate.py"), leaky).unwrap();
    std::fs::copy(
        repo().join("examples/demo/algorithm/model.json"),
        pkg.path().join("model.json"),
    )
    .unwrap();
    std::fs::write(pkg.path().join("run.sh"), "exec python3 /app/validate.py\n").unwrap();
    let out = local_run(pkg.path(), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("1 final report(s) refused by the criteria"),
        "{stdout}"
    );
    assert!(stdout.contains("compatible: NO"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unknown field"), "{stderr}");
}

#[test]
fn bad_input_is_named() {
    let pkg = repo().join("examples/demo/algorithm");
    let out = local_run(&pkg, &["--param", "1bad=x"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1bad"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = local_run(&pkg, &["--runner", "process"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--insecure-no-sandbox"));
    let empty = tempfile::tempdir().unwrap();
    let out = local_run(empty.path(), &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no entry point"));
    let out = local_run(&pkg, &["--memory", "lots"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a size"));
}
