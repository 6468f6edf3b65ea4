//! Blocking HTTP client for the FHE API (used by `sealroom fhe ...` and the demo).

use std::time::Duration;

use rand::Rng;
use sealroom_fhe::plan::ClientPlan;
use sealroom_fhe::{ClientKey, FheError, InputCiphertext, OutputCiphertext};
use serde::de::DeserializeOwned;

use super::api::{FinishRequest, FinishResponse, ModelInfo};
use super::keys::key_id;

/// Errors of the client side.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached or the transfer failed.
    #[error("request to {url} failed: {message}")]
    Transport {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The server refused the request.
    #[error("server refused the request ({status} {code}): {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Stable error code.
        code: String,
        /// Message for the user.
        message: String,
    },
    /// The server's answer was not what the protocol says.
    #[error("unexpected answer from {url}: {message}")]
    Protocol {
        /// The URL.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// Local FHE error (keys, ciphertexts, model).
    #[error(transparent)]
    Fhe(#[from] FheError),
}

/// A client of one server.
#[derive(Debug, Clone)]
pub struct FheClient {
    base: String,
    agent: ureq::Agent,
}

/// The result of one split inference.
#[derive(Debug, Clone)]
pub struct SplitResult {
    /// Decrypted activations.
    pub activations: Vec<i64>,
    /// What was sent to the owner (after noise).
    pub sent: Vec<i64>,
    /// The owner's answer.
    pub response: FinishResponse,
    /// Server evaluation time reported by the server (ms).
    pub eval_ms: Option<u64>,
}

const MAX_ANSWER: u64 = 64 << 20;

impl FheClient {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(600)))
            .http_status_as_error(false)
            .build()
            .into();
        FheClient {
            base: base.trim_end_matches('/').to_string(),
            agent,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn transport(url: &str, e: impl std::fmt::Display) -> ClientError {
        ClientError::Transport {
            url: url.to_string(),
            message: e.to_string(),
        }
    }

    fn read(
        url: &str,
        mut resp: ureq::http::Response<ureq::Body>,
    ) -> Result<(u16, Vec<u8>, Option<u64>), ClientError> {
        let status = resp.status().as_u16();
        let eval_ms = resp
            .headers()
            .get("x-sealroom-eval-ms")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
            .map_err(|e| Self::transport(url, e))?;
        if status >= 400 {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            return Err(ClientError::Api {
                status,
                code: v["error"]["code"].as_str().unwrap_or("unknown").to_string(),
                message: v["error"]["message"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect()),
            });
        }
        Ok((status, body, eval_ms))
    }

    fn json<T: DeserializeOwned>(url: &str, body: &[u8]) -> Result<T, ClientError> {
        serde_json::from_slice(body).map_err(|e| ClientError::Protocol {
            url: url.to_string(),
            message: e.to_string(),
        })
    }

    fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = self.url(path);
        let resp = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| Self::transport(&url, e))?;
        let (_, body, _) = Self::read(&url, resp)?;
        Self::json(&url, &body)
    }

    /// Published models.
    pub fn list_models(&self) -> Result<Vec<ModelInfo>, ClientError> {
        self.get_json("/fhe/v1/models")
    }

    /// One model's public description.
    pub fn model(&self, id: &str) -> Result<ModelInfo, ClientError> {
        self.get_json(&format!("/fhe/v1/models/{id}"))
    }

    /// Publishes a model document; returns its id.
    pub fn publish(&self, model_json: &[u8]) -> Result<String, ClientError> {
        let url = self.url("/fhe/v1/models");
        let resp = self
            .agent
            .post(&url)
            .header("content-type", "application/json")
            .send(model_json)
            .map_err(|e| Self::transport(&url, e))?;
        let (_, body, _) = Self::read(&url, resp)?;
        let v: serde_json::Value = Self::json(&url, &body)?;
        v["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ClientError::Protocol {
                url,
                message: "no id in the answer".into(),
            })
    }

    /// What to encrypt for a split.
    pub fn plan(&self, id: &str, layers: usize) -> Result<ClientPlan, ClientError> {
        self.get_json(&format!("/fhe/v1/models/{id}/plan?layers={layers}"))
    }

    /// Uploads the compressed server key unless the server already has it; returns its id.
    pub fn ensure_key(&self, id: &str, server_key: &[u8]) -> Result<String, ClientError> {
        let kid = key_id(server_key);
        let url = self.url(&format!("/fhe/v1/models/{id}/keys/{kid}"));
        let resp = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| Self::transport(&url, e))?;
        match Self::read(&url, resp) {
            Ok(_) => return Ok(kid),
            Err(ClientError::Api {
                status: 404, code, ..
            }) if code == "key_not_found" => {}
            Err(e) => return Err(e),
        }
        let url = self.url(&format!("/fhe/v1/models/{id}/keys"));
        let resp = self
            .agent
            .put(&url)
            .header("content-type", "application/octet-stream")
            .send(server_key)
            .map_err(|e| Self::transport(&url, e))?;
        let (_, body, _) = Self::read(&url, resp)?;
        let v: serde_json::Value = Self::json(&url, &body)?;
        match v["key_id"].as_str() {
            Some(k) if k == kid => Ok(kid),
            _ => Err(ClientError::Protocol {
                url,
                message: "the server answered with another key id".into(),
            }),
        }
    }

    /// Sends an encrypted input; returns the encrypted activations and the server's time.
    pub fn infer(
        &self,
        id: &str,
        key: &str,
        layers: usize,
        ct: &InputCiphertext,
    ) -> Result<(OutputCiphertext, Option<u64>), ClientError> {
        let url = self.url(&format!(
            "/fhe/v1/models/{id}/infer?key={key}&layers={layers}"
        ));
        let resp = self
            .agent
            .post(&url)
            .header("content-type", "application/octet-stream")
            .send(&ct.to_bytes()[..])
            .map_err(|e| Self::transport(&url, e))?;
        let (_, body, ms) = Self::read(&url, resp)?;
        Ok((OutputCiphertext::from_bytes(&body)?, ms))
    }

    /// The owner's endpoint: runs the remaining layers on (noised) activations.
    pub fn finish(
        &self,
        id: &str,
        layers: usize,
        activations: &[i64],
    ) -> Result<FinishResponse, ClientError> {
        let url = self.url(&format!("/fhe/v1/models/{id}/finish"));
        let req = FinishRequest {
            layers,
            activations: activations.to_vec(),
        };
        let body = serde_json::to_vec(&req).map_err(|e| ClientError::Protocol {
            url: url.clone(),
            message: e.to_string(),
        })?;
        let resp = self
            .agent
            .post(&url)
            .header("content-type", "application/json")
            .send(&body[..])
            .map_err(|e| Self::transport(&url, e))?;
        let (_, body, _) = Self::read(&url, resp)?;
        Self::json(&url, &body)
    }

    /// The whole split for one input: plan → encrypt → infer → decrypt → noise → finish.
    /// `key_id` must be registered (see [`FheClient::ensure_key`]).
    #[allow(clippy::too_many_arguments)]
    pub fn split_infer<R: Rng + ?Sized>(
        &self,
        id: &str,
        layers: usize,
        client: &ClientKey,
        key_id: &str,
        plan: &ClientPlan,
        x: &[i64],
        noise: f64,
        rng: &mut R,
    ) -> Result<SplitResult, ClientError> {
        if x.len() != plan.input_len {
            return Err(FheError::InvalidInput(format!(
                "the model takes {} values, the input has {}",
                plan.input_len,
                x.len()
            ))
            .into());
        }
        let max = (1i64 << plan.input_bits) - 1;
        if let Some(v) = x.iter().find(|v| !(0..=max).contains(*v)) {
            return Err(
                FheError::InvalidInput(format!("input value {v} is outside 0..={max}")).into(),
            );
        }
        let ct = client.encrypt(plan.input_delta, x)?;
        let (out, eval_ms) = self.infer(id, key_id, layers, &ct)?;
        if out.len() != plan.output_len {
            return Err(ClientError::Protocol {
                url: self.base.clone(),
                message: format!(
                    "{} activations returned, {} expected",
                    out.len(),
                    plan.output_len
                ),
            });
        }
        let activations = client.decrypt(plan.output_bits, &out)?;
        let sent = sealroom_fhe::sim::obfuscate(&activations, noise, plan.output_bits, rng);
        let response = self.finish(id, layers, &sent)?;
        Ok(SplitResult {
            activations,
            sent,
            response,
            eval_ms,
        })
    }
}
