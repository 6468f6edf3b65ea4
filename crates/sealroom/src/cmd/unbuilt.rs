//! Commands whose parts are not built yet. They say so plainly and exit non-zero
//! (exit code 69, `EX_UNAVAILABLE`) instead of pretending.

use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Seed two organizations, a simulated project, an algorithm and a dataset, and run them once.
    #[arg(long)]
    pub demo: bool,
}

const NOT_BUILT: &str = "\
the control plane (sealroom server), the key broker and the enclave agent are not built yet.
What works today:
  sealroom keys cek|kek|wrap|unwrap    make and wrap keys
  sealroom encrypt|decrypt             seal and unseal files and directory trees
  sealroom import fernet|gpg           import Fernet tokens and gpg --symmetric files
  sealroom local-run PACKAGE --data DIR --criteria FILE
                                       run an algorithm package in the sandbox with the Enclave API
  sealroom criteria check|lint         validate reports against Cerberus-style criteria
  sealroom fhe demo|infer|leakage      FHE split inference
Try: sealroom local-run examples/demo/algorithm --data examples/demo/data --criteria examples/demo/criteria.json
See README.md for the roadmap.";

pub fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    let what = if args.demo { "up --demo" } else { "up" };
    eprintln!("sealroom {what}: {NOT_BUILT}");
    Ok(ExitCode::from(crate::exit::UNAVAILABLE))
}

pub fn demo() -> anyhow::Result<ExitCode> {
    eprintln!("sealroom demo: {NOT_BUILT}");
    Ok(ExitCode::from(crate::exit::UNAVAILABLE))
}
