//! The enclave agent: runs an algorithm owner's code in a sandbox on a data steward's site.
//!
//! This crate stays small and does not depend on the store or the server: what runs next to
//! secrets has as little code as possible.
//!
//! * [`agent`]: `sealroom agent`: claims a site's runs from the control plane and runs each one
//!   (staging, attestation and key release, the sandbox, outputs, heartbeats).
//! * [`sandbox`]: the [`sandbox::SandboxRunner`] trait and its runners — `bwrap` (the default),
//!   `container` (Docker or Podman through the Docker Engine API, with Runtime Build of the
//!   package's Dockerfile), and `process` (no isolation, development only, refuses to start
//!   unless told `--insecure-no-sandbox`), with memory, CPU and wall-time limits. See
//!   `docs/sandbox.md`.
//! * [`package`]: an algorithm package's entry point (Dockerfile `ENTRYPOINT`/`CMD`, or `run.sh`).
//! * [`enclave`]: one run: API, sandbox, launcher, reports, wiped workspace.
//! * [`enclave_api`]: the Enclave API (EscrowAI's paths) over TLS on a unix socket.
//! * [`forwarder`]: how the Enclave API reaches `https://localhost:5000` inside a sandbox that
//!   has no network: a relay from loopback to a bound unix socket.

pub mod agent;
pub mod enclave;
pub mod enclave_api;
pub mod forwarder;
pub mod package;
pub mod sandbox;
