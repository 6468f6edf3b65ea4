//! The enclave agent: runs an algorithm owner's code in a sandbox on a data steward's site.
//!
//! This crate stays small and does not depend on the store or the server: what runs next to
//! secrets has as little code as possible.
//!
//! * [`sandbox`]: the [`sandbox::SandboxRunner`] trait and its runners — `bwrap` (the default),
//!   and `process` (no isolation, development only, refuses to start unless told
//!   `--insecure-no-sandbox`), with memory, CPU and wall-time limits.
//! * [`package`]: an algorithm package's entry point (Dockerfile `ENTRYPOINT`/`CMD`, or `run.sh`).
//! * [`enclave`]: one run: API, sandbox, launcher, reports, wiped workspace.
//! * [`enclave_api`]: the Enclave API (EscrowAI's paths) over TLS on a unix socket.
//! * [`forwarder`]: how the Enclave API reaches `https://localhost:5000` inside a sandbox that
//!   has no network: a relay from loopback to a bound unix socket.

pub mod enclave;
pub mod enclave_api;
pub mod forwarder;
pub mod package;
pub mod sandbox;
