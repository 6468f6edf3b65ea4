//! HTTP handlers of the FHE API.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use sealroom_fhe::model::{argmax, InputSpec, Model};
use sealroom_fhe::plan::{ClientPlan, Plan};
use sealroom_fhe::{eval, CompressedServerKey, FheError, InputCiphertext};
use serde::{Deserialize, Serialize};

use super::keys::key_id;
use super::repo::PublishError;
use super::FheState;

/// An API error: a stable code and a message for the user.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn no_model(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "model_not_found",
            format!("no model {id:?} is published"),
        )
    }
}

impl From<FheError> for ApiError {
    fn from(e: FheError) -> Self {
        let (status, code) = match &e {
            FheError::InvalidModel(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_model"),
            FheError::InvalidSplit(_) => (StatusCode::BAD_REQUEST, "invalid_split"),
            FheError::InvalidInput(_) => (StatusCode::BAD_REQUEST, "invalid_input"),
            FheError::Malformed { .. } => (StatusCode::BAD_REQUEST, "malformed"),
            FheError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            FheError::ParamMismatch(_) => (StatusCode::BAD_REQUEST, "parameter_mismatch"),
            FheError::TimeBudgetExceeded { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "time_budget_exceeded")
            }
            FheError::InvalidDataset(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorInner<'a>,
}

#[derive(Serialize)]
struct ErrorInner<'a> {
    code: &'a str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorInner {
                code: self.code,
                message: &self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Public description of a model (no weights).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Id (the model's name).
    pub id: String,
    /// Free text.
    pub description: String,
    /// Input shape and bits.
    pub input: InputSpec,
    /// Layer types and their output sizes.
    pub layers: Vec<LayerInfo>,
    /// Most layers that may run encrypted.
    pub max_encrypted_layers: usize,
    /// Valid values of `layers` for inference.
    pub allowed_splits: Vec<usize>,
    /// Class labels.
    pub labels: Vec<String>,
    /// Training facts.
    pub metadata: serde_json::Value,
}

/// One layer in [`ModelInfo`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerInfo {
    /// `dense`, `conv2d`, `avg_pool` or `relu`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Values after the layer.
    pub outputs: usize,
}

fn info(model: &Model) -> ModelInfo {
    let doc = model.doc();
    ModelInfo {
        id: doc.name.clone(),
        description: doc.description.clone(),
        input: doc.input.clone(),
        layers: doc
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| LayerInfo {
                kind: l.kind().to_string(),
                outputs: model.len_after(i + 1),
            })
            .collect(),
        max_encrypted_layers: doc.max_encrypted_layers,
        allowed_splits: model.allowed_splits(),
        labels: doc.labels.clone(),
        metadata: doc.metadata.clone(),
    }
}

async fn list(State(st): State<FheState>) -> Json<Vec<ModelInfo>> {
    Json(st.repo.list().iter().map(|m| info(m)).collect())
}

async fn publish(
    State(st): State<FheState>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let model = Model::from_json(&body)?;
    let repo = st.repo.clone();
    let id = tokio::task::spawn_blocking(move || repo.publish(model))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(|e| match e {
            PublishError::Exists(_) => {
                ApiError::new(StatusCode::CONFLICT, "model_exists", e.to_string())
            }
            PublishError::BadName(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_model",
                e.to_string(),
            ),
            PublishError::Io(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string())
            }
        })?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "id": id }))))
}

async fn get_model(
    State(st): State<FheState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ModelInfo>> {
    let model = st.repo.get(&id).ok_or_else(|| ApiError::no_model(&id))?;
    Ok(Json(info(&model)))
}

#[derive(Deserialize)]
struct LayersQuery {
    layers: usize,
}

async fn get_plan(
    State(st): State<FheState>,
    Path(id): Path<String>,
    Query(q): Query<LayersQuery>,
) -> ApiResult<Json<ClientPlan>> {
    let model = st.repo.get(&id).ok_or_else(|| ApiError::no_model(&id))?;
    let plan = Plan::new(&model, q.layers)?;
    Ok(Json(plan.client_plan(&model)))
}

async fn put_key(
    State(st): State<FheState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    if st.repo.get(&id).is_none() {
        return Err(ApiError::no_model(&id));
    }
    if body.len() > st.config.max_key_bytes {
        return Err(FheError::TooLarge {
            what: "server key",
            size: body.len(),
            limit: st.config.max_key_bytes,
        }
        .into());
    }
    let kid = key_id(&body);
    if st.keys.get(&id, &kid).is_some() {
        return Ok((StatusCode::OK, Json(serde_json::json!({ "key_id": kid }))));
    }
    let (key, param) = tokio::task::spawn_blocking(move || {
        CompressedServerKey::from_bytes(&body).map(|c| (c.prepare(), c.param()))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))??;
    st.keys.insert(&id, &kid, Arc::new(key));
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "key_id": kid, "param": param.name() })),
    ))
}

async fn get_key(
    State(st): State<FheState>,
    Path((id, kid)): Path<(String, String)>,
) -> ApiResult<Json<serde_json::Value>> {
    match st.keys.get(&id, &kid) {
        Some(k) => Ok(Json(serde_json::json!({ "key_id": kid, "param": k.param().name() }))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "key_not_found",
            format!("no key {kid:?} is registered for model {id:?}: upload it with PUT /fhe/v1/models/{id}/keys"),
        )),
    }
}

#[derive(Deserialize)]
struct InferQuery {
    key: String,
    layers: usize,
}

async fn infer(
    State(st): State<FheState>,
    Path(id): Path<String>,
    Query(q): Query<InferQuery>,
    body: Bytes,
) -> ApiResult<Response> {
    let start = Instant::now();
    let budget = st.config.time_budget;
    let model = st.repo.get(&id).ok_or_else(|| ApiError::no_model(&id))?;
    model.check_split(q.layers)?;
    let key = st.keys.get(&id, &q.key).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "key_not_found",
            format!(
                "no key {:?} is registered for model {id:?}: upload it first",
                q.key
            ),
        )
    })?;
    if body.len() > st.config.max_input_bytes {
        return Err(FheError::TooLarge {
            what: "input ciphertext",
            size: body.len(),
            limit: st.config.max_input_bytes,
        }
        .into());
    }
    let ct = InputCiphertext::from_bytes(&body)?;
    let busy = || {
        ApiError::from(FheError::TimeBudgetExceeded {
            budget_ms: budget.as_millis(),
            done: 0,
            total: 0,
        })
    };
    let permit = tokio::time::timeout(budget, st.eval_slot.clone().acquire_owned())
        .await
        .map_err(|_| busy())?
        .map_err(|_| busy())?;
    let remaining = budget.saturating_sub(start.elapsed());
    let k = q.layers;
    let (out, timings) = tokio::task::spawn_blocking(move || {
        let r = eval::evaluate(&model, k, &key, &ct, remaining);
        drop(permit);
        r
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))??;
    let mut resp = (StatusCode::OK, out.to_bytes()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    let ms = (timings.expand + timings.linear + timings.bootstrap).as_millis();
    if let Ok(v) = HeaderValue::from_str(&ms.to_string()) {
        h.insert("x-sealroom-eval-ms", v);
    }
    Ok(resp)
}

/// The owner's endpoint request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FinishRequest {
    /// Layers already run (encrypted) by the client's split.
    pub layers: usize,
    /// Decrypted (possibly noised) activations.
    pub activations: Vec<i64>,
}

/// The owner's endpoint answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinishResponse {
    /// Final outputs (logits).
    pub outputs: Vec<i64>,
    /// Index of the largest output.
    pub prediction: usize,
    /// Its label, if the model has labels.
    pub label: Option<String>,
}

async fn finish(
    State(st): State<FheState>,
    Path(id): Path<String>,
    Json(req): Json<FinishRequest>,
) -> ApiResult<Json<FinishResponse>> {
    let model = st.repo.get(&id).ok_or_else(|| ApiError::no_model(&id))?;
    let plan = Plan::new(&model, req.layers)?;
    let want = model.len_after(req.layers);
    if req.activations.len() != want {
        return Err(FheError::InvalidInput(format!(
            "expected {want} activations after {} layers, found {}",
            req.layers,
            req.activations.len()
        ))
        .into());
    }
    let max = (1i64 << plan.output_bits) - 1;
    if let Some(v) = req.activations.iter().find(|v| !(0..=max).contains(*v)) {
        return Err(FheError::InvalidInput(format!("activation {v} is outside 0..={max}")).into());
    }
    let outputs = model.forward_range(req.layers, model.ops().len(), &req.activations)?;
    let prediction = argmax(&outputs);
    Ok(Json(FinishResponse {
        label: model.doc().labels.get(prediction).cloned(),
        outputs,
        prediction,
    }))
}

pub(crate) fn routes(state: FheState) -> Router {
    let cfg = state.config.clone();
    Router::new()
        .route(
            "/fhe/v1/models",
            get(list)
                .post(publish)
                .layer(DefaultBodyLimit::max(cfg.max_model_bytes)),
        )
        .route("/fhe/v1/models/{id}", get(get_model))
        .route("/fhe/v1/models/{id}/plan", get(get_plan))
        .route(
            "/fhe/v1/models/{id}/keys",
            put(put_key).layer(DefaultBodyLimit::max(cfg.max_key_bytes)),
        )
        .route("/fhe/v1/models/{id}/keys/{key_id}", get(get_key))
        .route(
            "/fhe/v1/models/{id}/infer",
            post(infer).layer(DefaultBodyLimit::max(cfg.max_input_bytes)),
        )
        .route(
            "/fhe/v1/models/{id}/finish",
            post(finish).layer(DefaultBodyLimit::max(1 << 20)),
        )
        .with_state(state)
}
