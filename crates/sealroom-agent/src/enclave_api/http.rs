//! HTTP/1.1 over TLS over a unix socket, with hyper.

use std::convert::Infallible;
use std::io::Read;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::Engine;
use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::header::{
    HeaderValue, ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE,
};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::UnixListener;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use super::data::{DataError, DataFile};
use super::{mlflow, model, EnclaveApi, PostedReport};

/// A response body: a whole buffer, or chunks streamed from a blocking reader.
pub enum ApiBody {
    /// All at once.
    Full(Full<Bytes>),
    /// Streamed from a channel fed by a blocking reader.
    Stream(mpsc::Receiver<std::io::Result<Bytes>>),
}

impl Body for ApiBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            ApiBody::Full(f) => Pin::new(f).poll_frame(cx).map_err(|never| match never {}),
            ApiBody::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data))),
        }
    }
}

impl std::fmt::Debug for ApiBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiBody::Full(_) => f.write_str("ApiBody::Full"),
            ApiBody::Stream(_) => f.write_str("ApiBody::Stream"),
        }
    }
}

pub(super) type Resp = Response<ApiBody>;

pub(super) fn json_response(status: StatusCode, value: serde_json::Value) -> Resp {
    let mut r = Response::new(ApiBody::Full(Full::new(Bytes::from(value.to_string()))));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn raw_json(status: StatusCode, body: String) -> Resp {
    let mut r = Response::new(ApiBody::Full(Full::new(Bytes::from(body))));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

pub(super) fn error(status: StatusCode, message: impl Into<String>) -> Resp {
    json_response(status, json!({"error": message.into()}))
}

/// Serves the API on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: UnixListener,
    tls: TlsAcceptor,
    api: Arc<EnclaveApi>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let tls = tls.clone();
                let api = api.clone();
                tokio::spawn(async move {
                    let Ok(stream) = tls.accept(stream).await else { return };
                    let service = hyper::service::service_fn(move |req| {
                        let api = api.clone();
                        async move { Ok::<_, Infallible>(handle(api, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            _ = shutdown.changed() => {
                if *shutdown.borrow() { return; }
            }
        }
    }
}

/// Answers one request. `serve` calls it for every request; tests call it directly with any
/// body type.
pub async fn handle<B>(api: Arc<EnclaveApi>, req: Request<B>) -> Resp
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let path = req.uri().path().to_owned();
    if let Some(endpoint) = path.strip_prefix(mlflow::PREFIX) {
        let endpoint = endpoint.to_owned();
        return tracking(&api, req, &endpoint).await;
    }
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "/api/v1/data/files") => list_files(&api),
        (Method::GET, "/api/v1/data/file") => get_file(&api, &req),
        (Method::POST, "/api/v1/validate") => match read_report(&api, req).await {
            Ok(r) => validate(&api, &r).0,
            Err(resp) => resp,
        },
        (Method::POST, "/api/v1/report") => match read_report(&api, req).await {
            Ok(r) => post_report(&api, r),
            Err(resp) => resp,
        },
        (Method::POST, "/api/v1/model") => model::upload(api, req).await,
        (Method::GET, "/api/v1/parameters") => {
            let params: serde_json::Map<String, serde_json::Value> = api
                .parameters
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            json_response(StatusCode::OK, json!({"parameters": params}))
        }
        (
            _,
            "/api/v1/data/files" | "/api/v1/data/file" | "/api/v1/validate" | "/api/v1/report"
            | "/api/v1/parameters" | "/api/v1/model",
        ) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} is not allowed on {path}", req.method()),
        ),
        _ => error(StatusCode::NOT_FOUND, format!("no endpoint {path}")),
    }
}

/// Reads a whole body of at most `max` bytes; a larger one is `413`, a cut one `400`.
pub(super) async fn read_body<B>(body: B, max: usize) -> Result<Bytes, (StatusCode, String)>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    match Limited::new(body, max).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {max} bytes"),
        )),
        Err(e) => Err((
            StatusCode::BAD_REQUEST,
            format!("the request body could not be read: {e}"),
        )),
    }
}

/// `/api/2.0/mlflow/...`: the MLflow tracking subset (errors in MLflow's shape).
async fn tracking<B>(api: &EnclaveApi, req: Request<B>, endpoint: &str) -> Resp
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let method = req.method().as_str().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let body = match read_body(req.into_body(), api.limits.tracking.max_body).await {
        Ok(b) => b,
        Err((status, message)) => {
            let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "RESOURCE_LIMIT_EXCEEDED"
            } else {
                "MALFORMED_REQUEST"
            };
            return json_response(status, json!({"error_code": code, "message": message}));
        }
    };
    let (status, value) =
        api.with_tracking(|t| t.handle_request(&method, endpoint, query.as_deref(), &body));
    json_response(
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        value,
    )
}

/// A stable id for a file name, shaped like a UUID (EscrowAI lists UUIDs).
fn file_id(name: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, name.as_bytes());
    let d = digest.as_ref();
    let h = |a: usize, b: usize| {
        d[a..b]
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    };
    format!(
        "{}-{}-{}-{}-{}",
        h(0, 4),
        h(4, 6),
        h(6, 8),
        h(8, 10),
        h(10, 16)
    )
}

fn list_files(api: &EnclaveApi) -> Resp {
    let files: Vec<DataFile> = api.data.list();
    let list: Vec<_> = files
        .iter()
        .map(|f| json!({"id": file_id(&f.name), "name": f.name, "size": f.size, "uploadDate": f.upload_date}))
        .collect();
    json_response(
        StatusCode::OK,
        json!({"files": list, "totalFiles": files.len()}),
    )
}

/// Decodes `%XX` and `+` in a query component.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The decodable `key=value` pairs of a query, in order (undecodable ones are left out).
pub(crate) fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

/// The first value of `key` in the request's query.
pub(super) fn query_param(uri: &hyper::Uri, key: &str) -> Option<String> {
    query_pairs(uri.query()?)
        .into_iter()
        .find_map(|(k, v)| (k == key).then_some(v))
}

/// Parses a single `bytes=` range against a length. `Err(())` means unsatisfiable.
fn parse_range(header: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None; // multiple ranges: answer with the whole file
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 || len == 0 {
            return Some(Err(()));
        }
        (len.saturating_sub(n), len)
    } else {
        let start: u64 = a.parse().ok()?;
        let end = if b.is_empty() {
            len
        } else {
            b.parse::<u64>().ok()?.saturating_add(1).min(len)
        };
        if start >= len || start >= end {
            return Some(Err(()));
        }
        (start, end)
    };
    Some(Ok(range))
}

fn get_file<B>(api: &EnclaveApi, req: &Request<B>) -> Resp {
    let Some(name) = query_param(req.uri(), "filepath") else {
        return error(
            StatusCode::BAD_REQUEST,
            "the filepath query parameter is required",
        );
    };
    let len = match api.data.size(&name) {
        Ok(l) => l,
        Err(DataError::NotFound(_)) => {
            return error(StatusCode::NOT_FOUND, format!("File {name} not found"))
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let range = req
        .headers()
        .get(RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| parse_range(h, len));
    let (status, start, end) = match range {
        None => (StatusCode::OK, 0, len),
        Some(Ok((s, e))) => (StatusCode::PARTIAL_CONTENT, s, e),
        Some(Err(())) => {
            let mut r = error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!("the file has {len} bytes"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let mut reader = match api.data.open(&name, start..end) {
        Ok(r) => r,
        Err(DataError::NotFound(_)) => {
            return error(StatusCode::NOT_FOUND, format!("File {name} not found"))
        }
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let (tx, rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let mut left = end - start;
        while left > 0 {
            let mut buf = vec![0u8; (1024 * 1024).min(left as usize)];
            match reader.read(&mut buf) {
                Ok(0) => {
                    let _ = tx.blocking_send(Err(std::io::Error::other("file ended early")));
                    return;
                }
                Ok(n) => {
                    buf.truncate(n);
                    left -= n as u64;
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    // A segment failed verification: the connection is cut, not completed.
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    let mut r = Response::new(ApiBody::Stream(rx));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&(end - start).to_string()) {
        h.insert(CONTENT_LENGTH, v);
    }
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end - 1)) {
            h.insert(CONTENT_RANGE, v);
        }
    }
    r
}

/// A report body as posted: `name`, `status`, `json_data` (base64 of JSON), and ids.
pub(super) struct ReportBody {
    name: String,
    status: String,
    document_bytes: Vec<u8>,
}

async fn read_report<B>(api: &EnclaveApi, req: Request<B>) -> Result<ReportBody, Resp>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let is_json = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the report as application/json",
        ));
    }
    let bytes = read_body(req.into_body(), api.limits.max_body)
        .await
        .map_err(|(status, message)| error(status, message))?;
    parse_report(&bytes).map_err(|message| error(StatusCode::BAD_REQUEST, message))
}

/// Parses a report body: a JSON object whose `json_data` is base64 of a document.
pub(super) fn parse_report(bytes: &[u8]) -> Result<ReportBody, String> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("the body is not JSON: {e}"))?;
    if !v.is_object() {
        return Err("the body must be a JSON object".into());
    }
    let field = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    let data = field("json_data").ok_or("json_data (base64 of JSON) is required")?;
    let document_bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| format!("json_data is not base64: {e}"))?;
    Ok(ReportBody {
        name: field("name").unwrap_or_default(),
        status: field("status").unwrap_or_else(|| "In Progress".to_owned()),
        document_bytes,
    })
}

/// Validates a report's document; returns the response and whether it passed.
fn validate(api: &EnclaveApi, report: &ReportBody) -> (Resp, bool) {
    match api.criteria.validate_json(&report.document_bytes) {
        Ok(verdict) => {
            let status = if verdict.is_valid() {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            };
            (
                raw_json(status, verdict.response_json()),
                verdict.is_valid(),
            )
        }
        Err(e) => (
            json_response(
                StatusCode::BAD_REQUEST,
                json!({"status": "failed", "message": {"json_data": [e.to_string()]}}),
            ),
            false,
        ),
    }
}

fn post_report(api: &EnclaveApi, report: ReportBody) -> Resp {
    let is_final = report.status.eq_ignore_ascii_case("completed");
    if is_final {
        let (resp, ok) = validate(api, &report);
        if !ok {
            api.with_reports(|r| r.rejected_finals += 1);
            return resp;
        }
    }
    // Parsed only to check it is JSON and for display; the bytes are what is kept and forwarded
    // (re-serializing would turn large integers into floats and may reorder keys).
    let document = match serde_json::from_slice(&report.document_bytes) {
        Ok(d) => d,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("json_data does not hold JSON: {e}"),
            )
        }
    };
    let posted = PostedReport {
        name: report.name,
        status: report.status,
        json: report.document_bytes,
        document,
    };
    let limits = &api.limits;
    let kept = api.with_reports(|r| {
        if is_final {
            r.final_report = Some(posted);
            return true;
        }
        let used: usize = r.progress.iter().map(|p| p.json.len()).sum();
        if r.progress.len() >= limits.max_progress_reports
            || used + posted.json.len() > limits.max_progress_bytes
        {
            r.dropped_progress += 1;
            return false;
        }
        r.progress.push(posted);
        true
    });
    if !kept {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "this run keeps at most {} progress reports and {} bytes of them",
                limits.max_progress_reports, limits.max_progress_bytes
            ),
        );
    }
    let message = if is_final {
        "final report validated and accepted"
    } else {
        "report posted"
    };
    json_response(StatusCode::OK, json!({"message": message}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(Ok((0, 10))));
        assert_eq!(parse_range("bytes=90-", 100), Some(Ok((90, 100))));
        assert_eq!(parse_range("bytes=-5", 100), Some(Ok((95, 100))));
        assert_eq!(parse_range("bytes=50-500", 100), Some(Ok((50, 100))));
        assert_eq!(parse_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=5-2", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }

    #[test]
    fn query_decoding() {
        assert_eq!(percent_decode("a%2Fb+c.csv").as_deref(), Some("a/b c.csv"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%e2%82%ac").as_deref(), Some("€"));
    }
}
