//! One module per subcommand. Each `run`-style function returns the process exit code on success
//! (most return `ExitCode::SUCCESS`) and an `anyhow::Error` otherwise, which `exit::report` maps
//! to a documented exit code.

pub mod admin;
pub mod agent;
pub mod api;
pub mod artifacts;
pub mod audit;
pub mod comms;
pub mod criteria;
pub mod enclave;
pub mod fhe;
pub mod import;
pub mod keys;
pub mod local_run;
pub mod login;
pub mod package;
pub mod projects;
pub mod runs;
pub mod seal;
pub mod server;
pub mod up;
