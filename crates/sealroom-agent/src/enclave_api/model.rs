//! `POST /api/v1/model[?name=NAME]`: a training run's trained model, sealed to the AO as it
//! streams in.
//!
//! The body (`application/octet-stream`, any length up to [`super::ApiLimits::max_model_bytes`])
//! goes chunk by chunk into a [`SealWriter`] under the AO's CEK, written to a temporary file in
//! the run's memory-backed output directory; plaintext is never written anywhere. Only when the
//! whole body arrived and the sealed file is complete is it renamed to [`MODEL_FILE_NAME`],
//! replacing an earlier upload, and recorded in [`super::Reports::model`] with the SHA-256 of
//! the sealed bytes. A cut, oversized or failed upload leaves the previous model as it was.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http_body::Body;
use http_body_util::BodyExt;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Request, StatusCode};
use sealroom_envelope::stream::SealWriter;
use serde_json::json;
use tokio::sync::mpsc;

use super::http::{error, json_response, query_param, Resp};
use super::{AlgorithmType, EnclaveApi, UploadedModel, MODEL_FILE_NAME};

/// Longest model name.
const MAX_NAME_LEN: usize = 128;

/// What the blocking sealer receives.
enum Chunk {
    Data(Bytes),
    /// The body ended: finish the sealed file.
    End,
}

/// Clears the "upload in progress" flag when the upload ends, however it ends.
struct Busy<'a>(&'a EnclaveApi);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.model_busy.store(false, Ordering::Release);
    }
}

/// A model name: letters, digits, `.`, `_`, `-`; not starting with `.`; at most 128 bytes.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

pub(super) async fn upload<B>(api: Arc<EnclaveApi>, req: Request<B>) -> Resp
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    if api.algorithm != AlgorithmType::Training {
        return error(
            StatusCode::FORBIDDEN,
            "this is a validation run: only a training run uploads a trained model",
        );
    }
    if api.output.is_none() {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "this run has no output area for a trained model",
        );
    }
    let content_type = req.headers().get(CONTENT_TYPE).map(|v| v.to_str());
    if !matches!(content_type, None | Some(Ok("application/octet-stream"))) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the model as application/octet-stream",
        );
    }
    let name = match query_param(req.uri(), "name") {
        None => "model".to_owned(),
        Some(n) if valid_name(&n) => n,
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "name must be 1 to {MAX_NAME_LEN} letters, digits, '.', '_' or '-', \
                     not starting with '.'"
                ),
            )
        }
    };
    let max = api.limits.max_model_bytes;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return too_large(max);
    }
    if api
        .model_busy
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return error(StatusCode::CONFLICT, "another model upload is in progress");
    }
    let _busy = Busy(&api);

    let (tx, rx) = mpsc::channel::<Chunk>(4);
    let sealer = {
        let api = api.clone();
        tokio::task::spawn_blocking(move || seal_stream(&api, rx))
    };
    let mut body = Box::pin(req.into_body());
    let mut received = 0u64;
    let mut failure = None;
    while let Some(frame) = body.frame().await {
        let data = match frame {
            Ok(f) => match f.into_data() {
                Ok(d) => d,
                Err(_) => continue, // trailers
            },
            Err(e) => {
                failure = Some(error(
                    StatusCode::BAD_REQUEST,
                    format!("the upload was cut: {e}"),
                ));
                break;
            }
        };
        received += data.len() as u64;
        if received > max {
            failure = Some(too_large(max));
            break;
        }
        if tx.send(Chunk::Data(data)).await.is_err() {
            break; // the sealer stopped: its error is reported below
        }
    }
    if failure.is_none() {
        // If the sealer already stopped, this fails and its error is reported below.
        let _ = tx.send(Chunk::End).await;
    }
    drop(tx); // without `End`, the sealer discards the partial file
    let sealed = match sealer.await {
        Ok(r) => r,
        Err(e) => Err(format!("the sealing task failed: {e}")),
    };
    if let Some(resp) = failure {
        return resp;
    }
    let model = match sealed {
        Ok(Some(m)) => UploadedModel { name, ..m },
        Ok(None) => {
            return error(
                StatusCode::BAD_REQUEST,
                "the upload ended before the body was complete",
            )
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let answer = json!({
        "message": "model sealed and stored",
        "name": model.name,
        "size": model.size,
        "sealed_size": model.sealed_size,
        "sha256": model.sha256,
    });
    api.with_reports(|r| r.model = Some(model));
    json_response(StatusCode::OK, answer)
}

fn too_large(max: u64) -> Resp {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("a trained model may have at most {max} bytes"),
    )
}

/// Seals what arrives on `rx` into a temporary file in the output directory; on `End`, finishes
/// it, hashes the sealed bytes and renames it to [`MODEL_FILE_NAME`]. `Ok(None)` if the channel
/// closed before `End` (the partial file is removed). The returned model's name is empty.
fn seal_stream(
    api: &EnclaveApi,
    mut rx: mpsc::Receiver<Chunk>,
) -> Result<Option<UploadedModel>, String> {
    let Some(output) = &api.output else {
        return Err("this run has no output area for a trained model".into());
    };
    let tmp = tempfile::Builder::new()
        .prefix(".model-")
        .suffix(".partial")
        .tempfile_in(&output.dir)
        .map_err(|e| format!("cannot create the model file: {e}"))?;
    let file = tmp
        .as_file()
        .try_clone()
        .map_err(|e| format!("cannot open the model file: {e}"))?;
    let mut writer =
        SealWriter::new(file, &output.cek).map_err(|e| format!("cannot seal the model: {e}"))?;
    loop {
        match rx.blocking_recv() {
            Some(Chunk::Data(d)) => writer
                .write_all(&d)
                .map_err(|e| format!("cannot seal the model: {e}"))?,
            Some(Chunk::End) => break,
            None => return Ok(None), // `tmp` is removed on drop
        }
    }
    let (mut file, summary) = writer
        .finish()
        .map_err(|e| format!("cannot seal the model: {e}"))?;
    let sha256 = sha256_of(&mut file).map_err(|e| format!("cannot hash the sealed model: {e}"))?;
    let path: PathBuf = output.dir.join(MODEL_FILE_NAME);
    tmp.persist(&path)
        .map_err(|e| format!("cannot store the sealed model: {e}"))?;
    Ok(Some(UploadedModel {
        name: String::new(),
        path,
        size: summary.plaintext_len,
        sealed_size: summary.sealed_len,
        sha256,
        key_id: summary.key_id.to_string(),
    }))
}

/// SHA-256 of a file from its start, lowercase hex.
fn sha256_of(file: &mut std::fs::File) -> std::io::Result<String> {
    file.seek(SeekFrom::Start(0))?;
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        ctx.update(&buf[..n]);
    }
    Ok(super::hex(ctx.finish().as_ref()))
}
