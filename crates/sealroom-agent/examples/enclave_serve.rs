//! Serves a sealed dataset through the Enclave API on a unix socket, for benchmarks and manual
//! tests: `cargo run --release -p sealroom-agent --example enclave_serve -- SEALED_DIR CEK SOCKET`.
//! Criteria: accept `{}` documents only. Runs until killed.

use std::path::PathBuf;
use std::sync::Arc;

use sealroom_agent::enclave_api::data::SealedDataset;
use sealroom_agent::enclave_api::{self_signed_acceptor, serve, EnclaveApi, RunIds};
use sealroom_criteria::Criteria;
use sealroom_envelope::Cek;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, cek, socket] = args.as_slice() else {
        return Err("usage: enclave_serve SEALED_DIR CEK SOCKET".into());
    };
    let cek = Cek::read_file(&PathBuf::from(cek))?;
    let data = Arc::new(SealedDataset::open(&PathBuf::from(dir), cek)?);
    let api = Arc::new(EnclaveApi::new(
        data,
        Criteria::from_json(b"{}")?,
        vec![],
        RunIds::default(),
    ));
    let listener = tokio::net::UnixListener::bind(socket)?;
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    eprintln!("serving {dir} on {socket}");
    serve(listener, self_signed_acceptor()?, api, stop).await;
    Ok(())
}
