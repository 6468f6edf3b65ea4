//! `sealroom enclave-launch` (hidden): the first process inside a run's sandbox. It makes the
//! Enclave API reachable at the address algorithms expect, then runs the entrypoint. See
//! `sealroom_agent::forwarder`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

#[derive(Debug, Args)]
pub struct LaunchArgs {
    /// The Enclave API's unix socket, as bound into the sandbox.
    #[arg(long)]
    socket: PathBuf,
    /// Where the algorithm connects.
    #[arg(long, default_value = "127.0.0.1:5000")]
    listen: SocketAddr,
    /// The entrypoint and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

pub fn launch(args: LaunchArgs) -> anyhow::Result<ExitCode> {
    let (program, rest) = args
        .command
        .split_first()
        .context("no entrypoint given after --")?;
    let status = sealroom_agent::forwarder::launch(args.listen, &args.socket, program, rest)
        .with_context(|| format!("cannot start the entrypoint {program}"))?;
    use std::os::unix::process::ExitStatusExt;
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        (None, None) => 1,
    };
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
