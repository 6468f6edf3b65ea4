//! A bounded subset of the MLflow tracking REST API (`/api/2.0/mlflow/...`), enough for the real
//! `mlflow` client's `set_experiment`, `start_run`, `log_param(s)`, `log_metric(s)`, `set_tag(s)`
//! and `end_run`. What the algorithm logs becomes the run's performance report ([`Performance`]).
//!
//! Everything is kept in memory, under [`TrackingLimits`]: number of experiments, runs, params,
//! tags and metric points, key and value lengths, and body size. Errors have MLflow's shape,
//! `{"error_code": "...", "message": "..."}`, so the client raises its usual `RestException`.
//! A limit is answered `400 RESOURCE_LIMIT_EXCEEDED` (not 429, which the client would retry).
//! Artifacts are not supported: a trained model goes to `POST /api/v1/model`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Map, Value};

/// The path prefix of the tracking subset.
pub const PREFIX: &str = "/api/2.0/mlflow/";

/// The experiment every run goes to unless told otherwise (MLflow's default experiment).
pub const DEFAULT_EXPERIMENT_ID: &str = "0";

/// Longest metric, param or tag key (MLflow's limit).
const MAX_KEY_LEN: usize = 250;
/// Longest param value (MLflow's limit).
const MAX_PARAM_VALUE_LEN: usize = 6000;
/// Longest tag value (MLflow's limit).
const MAX_TAG_VALUE_LEN: usize = 8000;
/// Longest experiment name, run name or user id.
const MAX_NAME_LEN: usize = 500;

/// The caps of the tracking subset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingLimits {
    /// Largest request body.
    pub max_body: usize,
    /// Most experiments, the default one included.
    pub max_experiments: usize,
    /// Most runs.
    pub max_runs: usize,
    /// Most params per run.
    pub max_params_per_run: usize,
    /// Most tags per run.
    pub max_tags_per_run: usize,
    /// Most metric points over all runs.
    pub max_metric_points: usize,
    /// Most metrics + params + tags in one `log-batch` (MLflow's own limit is 1000).
    pub max_batch: usize,
}

impl Default for TrackingLimits {
    fn default() -> Self {
        TrackingLimits {
            max_body: 1 << 20,
            max_experiments: 32,
            max_runs: 256,
            max_params_per_run: 1000,
            max_tags_per_run: 200,
            max_metric_points: 200_000,
            max_batch: 1000,
        }
    }
}

/// What the algorithm logged: the run's performance report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Performance {
    /// Every tracked run, in the order they were created.
    pub runs: Vec<TrackedRun>,
}

impl Performance {
    /// The report as JSON (non-finite metric values as MLflow writes them: `"NaN"`,
    /// `"Infinity"`, `"-Infinity"`).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Whether nothing was logged.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }
}

/// One MLflow run as the performance report shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackedRun {
    /// The run id (32 hex digits).
    pub run_id: String,
    /// Its name.
    pub run_name: String,
    /// Its experiment's id.
    pub experiment_id: String,
    /// Its experiment's name.
    pub experiment_name: String,
    /// `RUNNING`, `FINISHED`, `FAILED`, `KILLED` or `SCHEDULED`.
    pub status: String,
    /// Start, milliseconds since the epoch.
    pub start_time: i64,
    /// End, milliseconds since the epoch, once ended.
    pub end_time: Option<i64>,
    /// Params (immutable once logged, as in MLflow).
    pub params: BTreeMap<String, String>,
    /// Every metric point, in the order logged.
    pub metrics: Vec<MetricPoint>,
}

/// One logged metric value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricPoint {
    /// Metric name.
    pub key: String,
    /// Its value; non-finite values serialize as `"NaN"`, `"Infinity"`, `"-Infinity"`.
    #[serde(serialize_with = "serialize_metric_value")]
    pub value: f64,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// The step.
    pub step: i64,
}

fn serialize_metric_value<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    metric_json(*v).serialize(s)
}

fn metric_json(v: f64) -> Value {
    if v.is_nan() {
        json!("NaN")
    } else if v == f64::INFINITY {
        json!("Infinity")
    } else if v == f64::NEG_INFINITY {
        json!("-Infinity")
    } else {
        json!(v)
    }
}

#[derive(Debug)]
struct Experiment {
    id: String,
    name: String,
    tags: BTreeMap<String, String>,
    creation_time: i64,
}

#[derive(Debug)]
struct Run {
    id: String,
    name: String,
    experiment_id: String,
    user_id: String,
    status: &'static str,
    start_time: i64,
    end_time: Option<i64>,
    params: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
    metrics: Vec<MetricPoint>,
}

/// The in-memory tracking store behind `/api/2.0/mlflow/`.
#[derive(Debug)]
pub struct Tracking {
    limits: TrackingLimits,
    experiments: Vec<Experiment>,
    runs: Vec<Run>,
    metric_points: usize,
    next_experiment: u64,
}

/// An error in MLflow's shape.
#[derive(Debug)]
struct Failure {
    status: u16,
    code: &'static str,
    message: String,
}

type Outcome = Result<Value, Failure>;

fn invalid(message: impl Into<String>) -> Failure {
    Failure {
        status: 400,
        code: "INVALID_PARAMETER_VALUE",
        message: message.into(),
    }
}

fn not_found(message: impl Into<String>) -> Failure {
    Failure {
        status: 404,
        code: "RESOURCE_DOES_NOT_EXIST",
        message: message.into(),
    }
}

fn limit(message: impl Into<String>) -> Failure {
    Failure {
        status: 400,
        code: "RESOURCE_LIMIT_EXCEEDED",
        message: message.into(),
    }
}

/// The arguments of a request: a JSON body's object, or a GET's query parameters as strings.
struct Args(Map<String, Value>);

impl Args {
    fn opt_str(&self, key: &str) -> Result<Option<&str>, Failure> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(invalid(format!("{key} must be a string"))),
        }
    }

    fn str(&self, key: &str) -> Result<&str, Failure> {
        self.opt_str(key)?
            .ok_or_else(|| invalid(format!("missing value for required parameter '{key}'")))
    }

    /// An int64: a JSON integer, or a string of one (protobuf's JSON mapping).
    fn opt_int(&self, key: &str) -> Result<Option<i64>, Failure> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| invalid(format!("{key} must be a 64-bit integer"))),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| invalid(format!("{key} must be a 64-bit integer"))),
            Some(_) => Err(invalid(format!("{key} must be a 64-bit integer"))),
        }
    }

    fn run_id(&self) -> Result<&str, Failure> {
        match self.opt_str("run_id")? {
            Some(id) if !id.is_empty() => Ok(id),
            _ => self.str("run_uuid"),
        }
    }

    fn list(&self, key: &str) -> Result<&[Value], Failure> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(&[]),
            Some(Value::Array(a)) => Ok(a),
            Some(_) => Err(invalid(format!("{key} must be a list"))),
        }
    }

    fn entry(v: &Value, what: &str) -> Result<Args, Failure> {
        match v {
            Value::Object(m) => Ok(Args(m.clone())),
            _ => Err(invalid(format!("each {what} must be an object"))),
        }
    }
}

/// A double: a JSON number, or one of protobuf's strings for non-finite values.
fn metric_value(args: &Args) -> Result<f64, Failure> {
    match args.0.get("value") {
        Some(Value::Number(n)) => n.as_f64().ok_or_else(|| invalid("value must be a number")),
        Some(Value::String(s)) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            other => other
                .trim()
                .parse::<f64>()
                .map_err(|_| invalid("value must be a number")),
        },
        None | Some(Value::Null) => Err(invalid("missing value for required parameter 'value'")),
        Some(_) => Err(invalid("value must be a number")),
    }
}

fn check_key(kind: &str, key: &str) -> Result<(), Failure> {
    let ok_chars = key
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | '/' | ':'));
    if key.is_empty() || key.len() > MAX_KEY_LEN || !ok_chars {
        return Err(invalid(format!(
            "invalid {kind} name {:?}: 1 to {MAX_KEY_LEN} bytes of letters, digits, \
             underscores, dashes, periods, spaces, slashes and colons",
            truncate(key)
        )));
    }
    Ok(())
}

fn check_len(what: &str, value: &str, max: usize) -> Result<(), Failure> {
    if value.len() > max {
        return Err(invalid(format!(
            "{what} is {} bytes, the limit is {max}",
            value.len()
        )));
    }
    Ok(())
}

/// At most 64 bytes of an untrusted string, for an error message.
fn truncate(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn new_run_id() -> Result<String, Failure> {
    use aws_lc_rs::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 16];
    SystemRandom::new().fill(&mut bytes).map_err(|_| Failure {
        status: 500,
        code: "INTERNAL_ERROR",
        message: "the random generator failed".into(),
    })?;
    Ok(super::hex(&bytes))
}

fn parse_status(s: &str) -> Result<&'static str, Failure> {
    ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]
        .into_iter()
        .find(|k| *k == s)
        .ok_or_else(|| invalid(format!("invalid run status {:?}", truncate(s))))
}

fn tags_json(tags: &BTreeMap<String, String>) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect(),
    )
}

fn metric_point_json(m: &MetricPoint) -> Value {
    json!({"key": m.key, "value": metric_json(m.value), "timestamp": m.timestamp, "step": m.step})
}

impl Tracking {
    /// An empty store with MLflow's default experiment (`0`, `Default`).
    pub fn new(limits: TrackingLimits) -> Self {
        Tracking {
            limits,
            experiments: vec![Experiment {
                id: DEFAULT_EXPERIMENT_ID.to_owned(),
                name: "Default".to_owned(),
                tags: BTreeMap::new(),
                creation_time: now_ms(),
            }],
            runs: Vec::new(),
            metric_points: 0,
            next_experiment: 1,
        }
    }

    /// The performance report: every run with its params and metric points.
    pub fn performance(&self) -> Performance {
        Performance {
            runs: self
                .runs
                .iter()
                .map(|r| TrackedRun {
                    run_id: r.id.clone(),
                    run_name: r.name.clone(),
                    experiment_id: r.experiment_id.clone(),
                    experiment_name: self
                        .experiment(&r.experiment_id)
                        .map(|e| e.name.clone())
                        .unwrap_or_default(),
                    status: r.status.to_owned(),
                    start_time: r.start_time,
                    end_time: r.end_time,
                    params: r.params.clone(),
                    metrics: r.metrics.clone(),
                })
                .collect(),
        }
    }

    /// Answers one request: `endpoint` is the path after [`PREFIX`] (`runs/log-metric`), `query`
    /// the URL's query (GET), `body` the request body (POST). Returns the HTTP status and the
    /// JSON answer. Never panics, whatever the input.
    pub fn handle_request(
        &mut self,
        method: &str,
        endpoint: &str,
        query: Option<&str>,
        body: &[u8],
    ) -> (u16, Value) {
        let outcome = self.dispatch(method, endpoint, query, body);
        match outcome {
            Ok(v) => (200, v),
            Err(f) => (
                f.status,
                json!({"error_code": f.code, "message": f.message}),
            ),
        }
    }

    fn dispatch(
        &mut self,
        method: &str,
        endpoint: &str,
        query: Option<&str>,
        body: &[u8],
    ) -> Outcome {
        if body.len() > self.limits.max_body {
            return Err(Failure {
                status: 413,
                code: "RESOURCE_LIMIT_EXCEEDED",
                message: format!(
                    "the request body is larger than {} bytes",
                    self.limits.max_body
                ),
            });
        }
        let read_only = matches!(
            endpoint,
            "experiments/get" | "experiments/get-by-name" | "runs/get" | "metrics/get-history"
        );
        let writes = matches!(
            endpoint,
            "experiments/create"
                | "runs/create"
                | "runs/update"
                | "runs/log-parameter"
                | "runs/log-metric"
                | "runs/log-batch"
                | "runs/set-tag"
                | "runs/delete-tag"
        );
        let either = endpoint == "experiments/search";
        if !(read_only || writes || either) {
            return Err(Failure {
                status: 404,
                code: "ENDPOINT_NOT_FOUND",
                message: format!(
                    "this Enclave API supports only part of the MLflow tracking API; \
                     {} is not in it",
                    truncate(endpoint)
                ),
            });
        }
        let args = match method {
            "GET" if read_only || either => Args(query_args(query)),
            "POST" if writes || either => Args(body_args(body)?),
            _ => {
                return Err(Failure {
                    status: 405,
                    code: "BAD_REQUEST",
                    message: format!("{} is not allowed on {}", truncate(method), endpoint),
                })
            }
        };
        match endpoint {
            "experiments/get" => {
                let id = args.str("experiment_id")?;
                let e = self
                    .experiment(id)
                    .ok_or_else(|| not_found(format!("no experiment with id {}", truncate(id))))?;
                Ok(json!({"experiment": experiment_json(e)}))
            }
            "experiments/get-by-name" => {
                let name = args.str("experiment_name")?;
                let e = self
                    .experiments
                    .iter()
                    .find(|e| e.name == name)
                    .ok_or_else(|| {
                        not_found(format!("no experiment named {:?}", truncate(name)))
                    })?;
                Ok(json!({"experiment": experiment_json(e)}))
            }
            "experiments/search" => Ok(json!({
                "experiments": self.experiments.iter().map(experiment_json).collect::<Vec<_>>()
            })),
            "experiments/create" => self.create_experiment(&args),
            "runs/create" => self.create_run(&args),
            "runs/get" => {
                let run = self.run(args.run_id()?)?;
                Ok(json!({"run": run_json(run)}))
            }
            "runs/update" => self.update_run(&args),
            "runs/log-parameter" => {
                let id = args.run_id()?.to_owned();
                let (key, value) = (args.str("key")?, args.str("value")?);
                self.log_params(&id, &[(key, value)])?;
                Ok(json!({}))
            }
            "runs/log-metric" => {
                let id = args.run_id()?.to_owned();
                let point = metric_point(&args)?;
                self.log_metrics(&id, vec![point])?;
                Ok(json!({}))
            }
            "runs/set-tag" => {
                let id = args.run_id()?.to_owned();
                let (key, value) = (args.str("key")?, args.str("value")?);
                self.set_tags(&id, &[(key, value)])?;
                Ok(json!({}))
            }
            "runs/delete-tag" => {
                let id = args.run_id()?.to_owned();
                let key = args.str("key")?;
                let run = self.run_mut(&id)?;
                run.tags
                    .remove(key)
                    .ok_or_else(|| not_found(format!("no tag {:?} on run {id}", truncate(key))))?;
                Ok(json!({}))
            }
            "runs/log-batch" => self.log_batch(&args),
            "metrics/get-history" => {
                let run = self.run(args.run_id()?)?;
                let key = args.str("metric_key")?;
                let points: Vec<Value> = run
                    .metrics
                    .iter()
                    .filter(|m| m.key == key)
                    .map(metric_point_json)
                    .collect();
                Ok(json!({"metrics": points}))
            }
            _ => Err(not_found("unknown endpoint")),
        }
    }

    fn experiment(&self, id: &str) -> Option<&Experiment> {
        self.experiments.iter().find(|e| e.id == id)
    }

    fn run(&self, id: &str) -> Result<&Run, Failure> {
        self.runs
            .iter()
            .find(|r| r.id == id)
            .ok_or_else(|| not_found(format!("no run with id {}", truncate(id))))
    }

    fn run_mut(&mut self, id: &str) -> Result<&mut Run, Failure> {
        self.runs
            .iter_mut()
            .find(|r| r.id == id)
            .ok_or_else(|| not_found(format!("no run with id {}", truncate(id))))
    }

    fn create_experiment(&mut self, args: &Args) -> Outcome {
        let name = args.str("name")?;
        if name.trim().is_empty() {
            return Err(invalid("an experiment needs a name"));
        }
        check_len("the experiment name", name, MAX_NAME_LEN)?;
        if self.experiments.iter().any(|e| e.name == name) {
            return Err(Failure {
                status: 400,
                code: "RESOURCE_ALREADY_EXISTS",
                message: format!("experiment {:?} already exists", truncate(name)),
            });
        }
        if self.experiments.len() >= self.limits.max_experiments {
            return Err(limit(format!(
                "at most {} experiments per run",
                self.limits.max_experiments
            )));
        }
        let tags = tag_list(args.list("tags")?, self.limits.max_tags_per_run)?;
        let id = self.next_experiment.to_string();
        self.next_experiment += 1;
        self.experiments.push(Experiment {
            id: id.clone(),
            name: name.to_owned(),
            tags: tags
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            creation_time: now_ms(),
        });
        Ok(json!({"experiment_id": id}))
    }

    fn create_run(&mut self, args: &Args) -> Outcome {
        let experiment_id = args
            .opt_str("experiment_id")?
            .unwrap_or(DEFAULT_EXPERIMENT_ID);
        if self.experiment(experiment_id).is_none() {
            return Err(not_found(format!(
                "no experiment with id {}",
                truncate(experiment_id)
            )));
        }
        if self.runs.len() >= self.limits.max_runs {
            return Err(limit(format!("at most {} runs", self.limits.max_runs)));
        }
        let user_id = args.opt_str("user_id")?.unwrap_or_default();
        check_len("user_id", user_id, MAX_NAME_LEN)?;
        let tags = tag_list(args.list("tags")?, self.limits.max_tags_per_run)?;
        let mut tags: BTreeMap<String, String> = tags
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let name = match args.opt_str("run_name")? {
            Some(n) if !n.is_empty() => n.to_owned(),
            _ => match tags.get("mlflow.runName") {
                Some(n) => n.clone(),
                None => format!("run-{}", self.runs.len() + 1),
            },
        };
        check_len("the run name", &name, MAX_NAME_LEN)?;
        tags.insert("mlflow.runName".to_owned(), name.clone());
        if tags.len() > self.limits.max_tags_per_run {
            return Err(limit(format!(
                "at most {} tags per run",
                self.limits.max_tags_per_run
            )));
        }
        let run = Run {
            id: new_run_id()?,
            name,
            experiment_id: experiment_id.to_owned(),
            user_id: user_id.to_owned(),
            status: "RUNNING",
            start_time: args.opt_int("start_time")?.unwrap_or_else(now_ms),
            end_time: None,
            params: BTreeMap::new(),
            tags,
            metrics: Vec::new(),
        };
        let answer = json!({"run": run_json(&run)});
        self.runs.push(run);
        Ok(answer)
    }

    fn update_run(&mut self, args: &Args) -> Outcome {
        let id = args.run_id()?.to_owned();
        let status = args.opt_str("status")?.map(parse_status).transpose()?;
        let end_time = args.opt_int("end_time")?;
        let name = args.opt_str("run_name")?;
        if let Some(n) = name {
            check_len("the run name", n, MAX_NAME_LEN)?;
        }
        let run = self.run_mut(&id)?;
        if let Some(s) = status {
            run.status = s;
        }
        if end_time.is_some() {
            run.end_time = end_time;
        }
        if let Some(n) = name.filter(|n| !n.is_empty()) {
            run.name = n.to_owned();
            run.tags.insert("mlflow.runName".to_owned(), n.to_owned());
        }
        Ok(json!({"run_info": run_info_json(run)}))
    }

    fn log_params(&mut self, id: &str, params: &[(&str, &str)]) -> Result<(), Failure> {
        for (k, v) in params {
            check_key("param", k)?;
            check_len("a param value", v, MAX_PARAM_VALUE_LEN)?;
        }
        let max = self.limits.max_params_per_run;
        let run = self.run_mut(id)?;
        // Check everything before changing anything: a batch is all or nothing.
        let mut added = 0;
        for (i, (k, v)) in params.iter().enumerate() {
            match run.params.get(*k) {
                Some(old) if old != v => {
                    return Err(invalid(format!(
                        "changing param values is not allowed: param {:?} was already logged \
                         with value {:?} for run {id}, the new value is {:?}",
                        truncate(k),
                        truncate(old),
                        truncate(v)
                    )))
                }
                Some(_) => {}
                None if params[..i].iter().any(|(k2, _)| k2 == k) => {
                    if params[..i].iter().any(|(k2, v2)| k2 == k && v2 != v) {
                        return Err(invalid(format!(
                            "param {:?} appears twice with different values",
                            truncate(k)
                        )));
                    }
                }
                None => added += 1,
            }
        }
        if run.params.len() + added > max {
            return Err(limit(format!("at most {max} params per run")));
        }
        for (k, v) in params {
            run.params.insert((*k).to_owned(), (*v).to_owned());
        }
        Ok(())
    }

    fn log_metrics(&mut self, id: &str, points: Vec<MetricPoint>) -> Result<(), Failure> {
        let max = self.limits.max_metric_points;
        if self.metric_points + points.len() > max {
            return Err(limit(format!("at most {max} metric points per run")));
        }
        let n = points.len();
        self.run_mut(id)?.metrics.extend(points);
        self.metric_points += n;
        Ok(())
    }

    fn set_tags(&mut self, id: &str, tags: &[(&str, &str)]) -> Result<(), Failure> {
        for (k, v) in tags {
            check_key("tag", k)?;
            check_len("a tag value", v, MAX_TAG_VALUE_LEN)?;
        }
        let max = self.limits.max_tags_per_run;
        let run = self.run_mut(id)?;
        let new: std::collections::BTreeSet<&str> = tags
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| !run.tags.contains_key(*k))
            .collect();
        if run.tags.len() + new.len() > max {
            return Err(limit(format!("at most {max} tags per run")));
        }
        for (k, v) in tags {
            run.tags.insert((*k).to_owned(), (*v).to_owned());
            if *k == "mlflow.runName" && !v.is_empty() {
                run.name = (*v).to_owned();
            }
        }
        Ok(())
    }

    fn log_batch(&mut self, args: &Args) -> Outcome {
        let id = args.run_id()?.to_owned();
        let (metrics, params, tags) = (
            args.list("metrics")?,
            args.list("params")?,
            args.list("tags")?,
        );
        let total = metrics.len() + params.len() + tags.len();
        if total > self.limits.max_batch {
            return Err(limit(format!(
                "a batch holds at most {} metrics, params and tags together, this one {total}",
                self.limits.max_batch
            )));
        }
        let points = metrics
            .iter()
            .map(|m| metric_point(&Args::entry(m, "metric")?))
            .collect::<Result<Vec<_>, _>>()?;
        let params = params
            .iter()
            .map(|p| Args::entry(p, "param"))
            .collect::<Result<Vec<_>, _>>()?;
        let params = params
            .iter()
            .map(|p| Ok((p.str("key")?, p.str("value")?)))
            .collect::<Result<Vec<_>, Failure>>()?;
        let tags = tag_list(tags, self.limits.max_batch)?;
        // All or nothing: check the limits that metrics and tags could hit before params (whose
        // check comes before any change) are stored.
        let max_points = self.limits.max_metric_points;
        if self.metric_points + points.len() > max_points {
            return Err(limit(format!("at most {max_points} metric points per run")));
        }
        let max_tags = self.limits.max_tags_per_run;
        let run = self.run(&id)?;
        let new_tags: std::collections::BTreeSet<&str> = tags
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| !run.tags.contains_key(*k))
            .collect();
        if run.tags.len() + new_tags.len() > max_tags {
            return Err(limit(format!("at most {max_tags} tags per run")));
        }
        self.log_params(&id, &params)?;
        self.log_metrics(&id, points)?;
        self.set_tags(&id, &tags)?;
        Ok(json!({}))
    }
}

fn metric_point(args: &Args) -> Result<MetricPoint, Failure> {
    let key = args.str("key")?;
    check_key("metric", key)?;
    Ok(MetricPoint {
        key: key.to_owned(),
        value: metric_value(args)?,
        timestamp: args.opt_int("timestamp")?.unwrap_or_else(now_ms),
        step: args.opt_int("step")?.unwrap_or(0),
    })
}

/// `[{"key", "value"}]`, checked.
fn tag_list(list: &[Value], max: usize) -> Result<Vec<(&str, &str)>, Failure> {
    if list.len() > max {
        return Err(limit(format!("at most {max} tags")));
    }
    list.iter()
        .map(|t| {
            let Value::Object(m) = t else {
                return Err(invalid("each tag must be an object"));
            };
            let get = |k: &str| match m.get(k) {
                Some(Value::String(s)) => Ok(s.as_str()),
                _ => Err(invalid(format!("each tag needs a string {k}"))),
            };
            let (k, v) = (get("key")?, get("value")?);
            check_key("tag", k)?;
            check_len("a tag value", v, MAX_TAG_VALUE_LEN)?;
            Ok((k, v))
        })
        .collect()
}

fn query_args(query: Option<&str>) -> Map<String, Value> {
    super::http::query_pairs(query.unwrap_or(""))
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect()
}

fn body_args(body: &[u8]) -> Result<Map<String, Value>, Failure> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Failure {
            status: 400,
            code: "MALFORMED_REQUEST",
            message: "the body must be a JSON object".into(),
        }),
        Err(e) => Err(Failure {
            status: 400,
            code: "MALFORMED_REQUEST",
            message: format!("the body is not JSON: {e}"),
        }),
    }
}

fn experiment_json(e: &Experiment) -> Value {
    json!({
        "experiment_id": e.id,
        "name": e.name,
        "artifact_location": format!("mlflow-artifacts:/{}", e.id),
        "lifecycle_stage": "active",
        "creation_time": e.creation_time,
        "last_update_time": e.creation_time,
        "tags": tags_json(&e.tags),
    })
}

fn run_info_json(r: &Run) -> Value {
    let mut info = json!({
        "run_id": r.id,
        "run_uuid": r.id,
        "run_name": r.name,
        "experiment_id": r.experiment_id,
        "user_id": r.user_id,
        "status": r.status,
        "start_time": r.start_time,
        "artifact_uri": format!("mlflow-artifacts:/{}/{}/artifacts", r.experiment_id, r.id),
        "lifecycle_stage": "active",
    });
    if let (Some(end), Value::Object(m)) = (r.end_time, &mut info) {
        m.insert("end_time".into(), json!(end));
    }
    info
}

/// The latest point of each metric (highest step, then timestamp, then the later one logged),
/// as MLflow's run data shows.
fn latest_metrics(r: &Run) -> Vec<Value> {
    let mut latest: BTreeMap<&str, &MetricPoint> = BTreeMap::new();
    for m in &r.metrics {
        match latest.get(m.key.as_str()) {
            Some(old) if (old.step, old.timestamp) > (m.step, m.timestamp) => {}
            _ => {
                latest.insert(&m.key, m);
            }
        }
    }
    latest.values().map(|m| metric_point_json(m)).collect()
}

fn run_json(r: &Run) -> Value {
    let params: Vec<Value> = r
        .params
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    json!({
        "info": run_info_json(r),
        "data": {"metrics": latest_metrics(r), "params": params, "tags": tags_json(&r.tags)},
        "inputs": {},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(t: &mut Tracking, endpoint: &str, body: Value) -> (u16, Value) {
        t.handle_request("POST", endpoint, None, body.to_string().as_bytes())
    }

    fn new_run(t: &mut Tracking) -> String {
        let (s, v) = post(
            t,
            "runs/create",
            json!({"experiment_id": "0", "run_name": "r"}),
        );
        assert_eq!(s, 200, "{v}");
        v["run"]["info"]["run_id"].as_str().unwrap().to_owned()
    }

    #[test]
    fn experiments_by_name_and_id() {
        let mut t = Tracking::new(TrackingLimits::default());
        let (s, v) = t.handle_request(
            "GET",
            "experiments/get-by-name",
            Some("experiment_name=e+1"),
            b"",
        );
        assert_eq!(
            (s, v["error_code"].as_str()),
            (404, Some("RESOURCE_DOES_NOT_EXIST"))
        );
        let (s, v) = post(&mut t, "experiments/create", json!({"name": "e 1"}));
        assert_eq!(s, 200);
        let id = v["experiment_id"].as_str().unwrap().to_owned();
        assert_eq!(id, "1");
        let (s, v) = post(&mut t, "experiments/create", json!({"name": "e 1"}));
        assert_eq!(
            (s, v["error_code"].as_str()),
            (400, Some("RESOURCE_ALREADY_EXISTS"))
        );
        let (s, v) = t.handle_request(
            "GET",
            "experiments/get-by-name",
            Some("experiment_name=e%201"),
            b"",
        );
        assert_eq!(
            (s, v["experiment"]["experiment_id"].as_str()),
            (200, Some("1"))
        );
        let (s, v) = t.handle_request("GET", "experiments/get", Some("experiment_id=0"), b"");
        assert_eq!(
            (s, v["experiment"]["name"].as_str()),
            (200, Some("Default"))
        );
        let (s, v) = post(&mut t, "experiments/search", json!({}));
        assert_eq!((s, v["experiments"].as_array().unwrap().len()), (200, 2));
    }

    #[test]
    fn a_run_collects_params_metrics_and_tags() {
        let mut t = Tracking::new(TrackingLimits::default());
        let id = new_run(&mut t);
        let ok = |r: (u16, Value)| assert_eq!(r.0, 200, "{}", r.1);
        ok(post(
            &mut t,
            "runs/log-parameter",
            json!({"run_uuid": id, "key": "lr", "value": "0.01"}),
        ));
        // Same value again is fine, a different one is not.
        ok(post(
            &mut t,
            "runs/log-parameter",
            json!({"run_id": id, "key": "lr", "value": "0.01"}),
        ));
        let (s, v) = post(
            &mut t,
            "runs/log-parameter",
            json!({"run_id": id, "key": "lr", "value": "1"}),
        );
        assert_eq!(
            (s, v["error_code"].as_str()),
            (400, Some("INVALID_PARAMETER_VALUE"))
        );
        ok(post(
            &mut t,
            "runs/log-metric",
            json!({"run_id": id, "key": "loss", "value": 0.5, "timestamp": 10, "step": 1}),
        ));
        ok(post(
            &mut t,
            "runs/log-metric",
            json!({"run_id": id, "key": "loss", "value": "NaN", "timestamp": "11", "step": "2"}),
        ));
        ok(post(
            &mut t,
            "runs/log-batch",
            json!({"run_id": id,
            "metrics": [{"key": "acc", "value": 0.8, "timestamp": 12, "step": 2}],
            "params": [{"key": "epochs", "value": "3"}],
            "tags": [{"key": "k", "value": "v"}]}),
        ));
        ok(post(
            &mut t,
            "runs/set-tag",
            json!({"run_id": id, "key": "t", "value": "x"}),
        ));
        ok(post(
            &mut t,
            "runs/delete-tag",
            json!({"run_id": id, "key": "t"}),
        ));
        let (s, v) = t.handle_request(
            "GET",
            "runs/get",
            Some(&format!("run_uuid={id}&run_id={id}")),
            b"",
        );
        assert_eq!(s, 200);
        let data = &v["run"]["data"];
        assert_eq!(
            data["metrics"],
            json!([
            {"key": "acc", "value": 0.8, "timestamp": 12, "step": 2},
            {"key": "loss", "value": "NaN", "timestamp": 11, "step": 2}])
        );
        assert_eq!(
            data["params"],
            json!([{"key": "epochs", "value": "3"}, {"key": "lr", "value": "0.01"}])
        );
        assert!(data["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["key"] == "k"));
        assert!(!data["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["key"] == "t"));
        let (s, v) = t.handle_request(
            "GET",
            "metrics/get-history",
            Some(&format!("run_id={id}&metric_key=loss")),
            b"",
        );
        assert_eq!((s, v["metrics"].as_array().unwrap().len()), (200, 2));
        let (s, v) = post(
            &mut t,
            "runs/update",
            json!({"run_id": id, "status": "FINISHED", "end_time": 99}),
        );
        assert_eq!(
            (s, v["run_info"]["status"].as_str()),
            (200, Some("FINISHED"))
        );

        let perf = t.performance();
        assert_eq!(perf.runs.len(), 1);
        let run = &perf.runs[0];
        assert_eq!(
            (run.status.as_str(), run.end_time, run.run_name.as_str()),
            ("FINISHED", Some(99), "r")
        );
        assert_eq!(run.experiment_name, "Default");
        assert_eq!(run.metrics.len(), 3);
        assert_eq!(perf.to_json()["runs"][0]["metrics"][1]["value"], "NaN");
        assert_eq!(perf.to_json()["runs"][0]["params"]["epochs"], "3");
    }

    #[test]
    fn bad_requests_are_json_errors() {
        let mut t = Tracking::new(TrackingLimits::default());
        let (s, v) = t.handle_request("POST", "runs/create", None, b"{not json");
        assert_eq!(
            (s, v["error_code"].as_str()),
            (400, Some("MALFORMED_REQUEST"))
        );
        let (s, v) = t.handle_request("POST", "runs/create", None, b"[1]");
        assert_eq!(
            (s, v["error_code"].as_str()),
            (400, Some("MALFORMED_REQUEST"))
        );
        let (s, _) = t.handle_request("GET", "runs/create", None, b"");
        assert_eq!(s, 405);
        let (s, v) = t.handle_request("POST", "artifacts/list", None, b"{}");
        assert_eq!(
            (s, v["error_code"].as_str()),
            (404, Some("ENDPOINT_NOT_FOUND"))
        );
        let (s, _) = post(
            &mut t,
            "runs/log-metric",
            json!({"run_id": "nope", "key": "a", "value": 1}),
        );
        assert_eq!(s, 404);
        let id = new_run(&mut t);
        for bad in [
            json!({"run_id": id, "key": "a", "value": true}),
            json!({"run_id": id, "key": "a", "value": 1, "step": 1.5}),
            json!({"run_id": id, "key": "../x\n", "value": 1}),
            json!({"run_id": id, "key": "a".repeat(300), "value": 1}),
            json!({"run_id": id, "value": 1}),
        ] {
            let (s, v) = post(&mut t, "runs/log-metric", bad.clone());
            assert_eq!(
                (s, v["error_code"].as_str()),
                (400, Some("INVALID_PARAMETER_VALUE")),
                "{bad}"
            );
        }
        let (s, _) = post(&mut t, "runs/create", json!({"experiment_id": "42"}));
        assert_eq!(s, 404);
        let (s, _) = post(
            &mut t,
            "runs/update",
            json!({"run_id": id, "status": "DONE"}),
        );
        assert_eq!(s, 400);
    }

    #[test]
    fn limits_hold() {
        let limits = TrackingLimits {
            max_body: 200,
            max_experiments: 2,
            max_runs: 2,
            max_params_per_run: 2,
            max_tags_per_run: 3,
            max_metric_points: 3,
            max_batch: 4,
        };
        let mut t = Tracking::new(limits);
        let (s, _) = t.handle_request("POST", "runs/create", None, &[b' '; 201]);
        assert_eq!(s, 413);
        assert_eq!(
            post(&mut t, "experiments/create", json!({"name": "a"})).0,
            200
        );
        let (s, v) = post(&mut t, "experiments/create", json!({"name": "b"}));
        assert_eq!(
            (s, v["error_code"].as_str()),
            (400, Some("RESOURCE_LIMIT_EXCEEDED"))
        );
        let id = new_run(&mut t);
        new_run(&mut t);
        assert_eq!(post(&mut t, "runs/create", json!({})).0, 400);
        let m = |v: i32| json!({"key": "m", "value": v});
        assert_eq!(
            post(
                &mut t,
                "runs/log-batch",
                json!({"run_id": id, "metrics": [m(1), m(2), m(3)]})
            )
            .0,
            200
        );
        assert_eq!(
            post(
                &mut t,
                "runs/log-metric",
                json!({"run_id": id, "key": "m", "value": 4})
            )
            .0,
            400
        );
        let p = |k: &str| json!({"key": k, "value": "v"});
        assert_eq!(
            post(
                &mut t,
                "runs/log-batch",
                json!({"run_id": id, "params": [p("a"), p("b"), p("c")]})
            )
            .0,
            400
        );
        assert!(
            t.performance().runs[0].params.is_empty(),
            "a refused batch changes nothing"
        );
        let mixed = json!({"run_id": id, "params": [p("q")], "metrics": [m(9)]});
        assert_eq!(post(&mut t, "runs/log-batch", mixed).0, 400);
        assert!(t.performance().runs[0].params.is_empty(), "all or nothing");
        let mixed = json!({"run_id": id, "params": [p("q")], "tags": [p("t1"), p("t2"), p("t3")]});
        assert_eq!(post(&mut t, "runs/log-batch", mixed).0, 400);
        assert!(t.performance().runs[0].params.is_empty(), "all or nothing");
        assert_eq!(
            post(
                &mut t,
                "runs/log-batch",
                json!({"run_id": id, "params": [p("a"), p("b"), p("a"), p("b"), p("a")]})
            )
            .0,
            400
        );
        assert_eq!(
            post(
                &mut t,
                "runs/log-batch",
                json!({"run_id": id, "params": [p("a"), p("b")]})
            )
            .0,
            200
        );
        // mlflow.runName is one tag already.
        assert_eq!(
            post(
                &mut t,
                "runs/log-batch",
                json!({"run_id": id, "tags": [p("x"), p("y")]})
            )
            .0,
            200
        );
        assert_eq!(
            post(
                &mut t,
                "runs/set-tag",
                json!({"run_id": id, "key": "z", "value": "v"})
            )
            .0,
            400
        );
        assert_eq!(
            post(
                &mut t,
                "runs/set-tag",
                json!({"run_id": id, "key": "x", "value": "w"})
            )
            .0,
            200
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut t = Tracking::new(TrackingLimits::default());
        let id = new_run(&mut t);
        let inputs: Vec<Vec<u8>> = vec![
            vec![0xff, 0xfe],
            b"{\"run_id\": 1}".to_vec(),
            format!("{{\"run_id\": \"{id}\", \"metrics\": [1, null], \"params\": {{}}}}").into_bytes(),
            format!("{{\"run_id\": \"{id}\", \"key\": \"a\", \"value\": 1e400}}").into_bytes(),
            format!("{{\"run_id\": \"{id}\", \"key\": \"a\", \"value\": 1, \"step\": 99999999999999999999}}").into_bytes(),
            b"{\"name\": \"\"}".to_vec(),
        ];
        for endpoint in [
            "runs/log-batch",
            "runs/log-metric",
            "experiments/create",
            "runs/update",
        ] {
            for body in &inputs {
                let (s, v) = t.handle_request("POST", endpoint, None, body);
                assert!(s < 500 && v.is_object(), "{endpoint} {s} {v}");
                if s != 200 {
                    assert!(v["error_code"].is_string(), "{v}");
                }
            }
            let (s, v) = t.handle_request("POST", endpoint, None, &inputs[0]);
            assert_eq!(
                (s, v["error_code"].as_str()),
                (400, Some("MALFORMED_REQUEST"))
            );
        }
        let (s, _) = t.handle_request("GET", "runs/get", Some("run_id=%zz&&=&x"), b"");
        assert_eq!(s, 400);
    }
}
