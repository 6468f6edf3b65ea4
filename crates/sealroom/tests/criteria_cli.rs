//! `sealroom criteria check|lint` end to end, on the EscrowAI manual's example criteria.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_sealroom");

/// The example criteria of the EscrowAI 2.0 user manual (§14.6.2).
const CRITERIA: &str = r#"{
  "report": {
    "type": "dict",
    "schema": {
      "accuracy": {
        "type": "dict",
        "schema": {
          "value": {"type": "float", "min": 0, "max": 1},
          "CI": {"type": "float", "min": 0, "max": 1},
          "n": {"type": "integer", "min": 1}
        }
      },
      "specificity": {
        "type": "dict",
        "schema": {
          "value": {"type": "float", "min": 0, "max": 1},
          "CI": {"type": "float", "min": 0, "max": 1},
          "n": {"type": "integer", "min": 1}
        }
      },
      "sensitivity": {
        "type": "dict",
        "schema": {
          "value": {"type": "float", "min": 0, "max": 1},
          "CI": {"type": "float", "min": 0, "max": 1},
          "n": {"type": "integer", "min": 1}
        }
      }
    }
  }
}"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn sealroom(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("sealroom runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[test]
fn valid_report_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let c = write(dir.path(), "criteria.json", CRITERIA);
    let d = write(
        dir.path(),
        "report.json",
        r#"{"report": {"accuracy": {"value": 0.91, "CI": 0.05, "n": 200},
                       "specificity": {"value": 0.8, "CI": 0.1, "n": 150}}}"#,
    );
    let o = sealroom(&[
        "criteria",
        "check",
        c.to_str().unwrap(),
        d.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("valid:"), "{}", stdout(&o));

    let o = sealroom(&[
        "criteria",
        "check",
        "--json",
        c.to_str().unwrap(),
        d.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o).trim(), r#"{"status":"successful","message":{}}"#);
}

#[test]
fn invalid_report_exits_one_with_cerberus_errors() {
    let dir = tempfile::tempdir().unwrap();
    let c = write(dir.path(), "criteria.json", CRITERIA);
    // An out-of-range value, a wrong type, and two fields that could carry data out.
    let d = write(
        dir.path(),
        "report.json",
        r#"{"report": {"accuracy": {"value": 1.5, "CI": 0.05, "n": "200", "ids": [17, 42]}},
            "patients": ["Jane Doe"]}"#,
    );
    let o = sealroom(&[
        "criteria",
        "check",
        "--json",
        c.to_str().unwrap(),
        d.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // Exactly what Python cerberus 1.3.8 reports for this document (keys and messages in its order).
    assert_eq!(
        stdout(&o).trim(),
        concat!(
            r#"{"status":"failed","message":{"patients":["unknown field"],"report":[{"accuracy":[{"#,
            r#""ids":["unknown field"],"n":["must be of integer type"],"value":["max value is 1"]}]}]}}"#
        )
    );

    let o = sealroom(&[
        "criteria",
        "check",
        c.to_str().unwrap(),
        d.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.starts_with("invalid:"), "{out}");
    assert!(
        out.contains("  report.accuracy.value: max value is 1\n"),
        "{out}"
    );
    assert!(out.contains("  patients: unknown field\n"), "{out}");
}

#[test]
fn malformed_inputs_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let c = write(dir.path(), "criteria.json", CRITERIA);
    let good = write(dir.path(), "good.json", r#"{"report": {}}"#);

    let broken = write(
        dir.path(),
        "broken.json",
        "{\"report\": {\"accuracy\": tru}}",
    );
    let o = sealroom(&[
        "criteria",
        "check",
        c.to_str().unwrap(),
        broken.to_str().unwrap(),
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("not valid JSON"), "{}", stderr(&o));
    assert!(stderr(&o).contains("line 1 column"), "{}", stderr(&o));

    let not_object = write(dir.path(), "list.json", "[1, 2]");
    let o = sealroom(&[
        "criteria",
        "check",
        c.to_str().unwrap(),
        not_object.to_str().unwrap(),
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("must be a JSON object"),
        "{}",
        stderr(&o)
    );

    let bad_criteria = write(
        dir.path(),
        "bad.json",
        r#"{"report": {"type": "dict", "schema": {"n": {"min": null}}}}"#,
    );
    let o = sealroom(&[
        "criteria",
        "check",
        bad_criteria.to_str().unwrap(),
        good.to_str().unwrap(),
    ]);
    assert_ne!(o.status.code(), Some(0));
    let err = stderr(&o);
    assert!(
        err.contains("criteria field 'report.n', rule 'min': null value not allowed"),
        "{err}"
    );

    let o = sealroom(&["criteria", "lint", bad_criteria.to_str().unwrap()]);
    assert_ne!(o.status.code(), Some(0));

    let unsupported = write(
        dir.path(),
        "unsupported.json",
        r#"{"a": {"regex": "(?=x)x"}}"#,
    );
    let o = sealroom(&["criteria", "lint", unsupported.to_str().unwrap()]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("lookahead"), "{}", stderr(&o));

    let o = sealroom(&["criteria", "lint", c.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("report"));

    let missing = dir.path().join("missing.json");
    let o = sealroom(&[
        "criteria",
        "check",
        c.to_str().unwrap(),
        missing.to_str().unwrap(),
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("cannot open document"),
        "{}",
        stderr(&o)
    );
}
