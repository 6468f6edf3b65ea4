//! The model format (`sealroom-fhe-model`, version 1) and its plaintext integer semantics.
//!
//! A model is a JSON document (see `docs/fhe.md`): an input shape `[C, H, W]` with the bit width
//! of its integer values, then a list of layers over integer tensors:
//!
//! - `dense`: `y[o] = bias[o] + Σ_i weights[o·inputs + i] · x[i]` over the flattened input;
//! - `conv2d`: `y[o,h,w] = bias[o] + Σ_{c,kh,kw} weights[((o·C + c)·K + kh)·K + kw] · x[c, h·s+kh-p, w·s+kw-p]`
//!   (zero padding);
//! - `avg_pool`: the *sum* over each `kernel × kernel` window (the `1/kernel²` is folded into the
//!   next requantization's `mult`, so the layer stays exact on integers);
//! - `relu`: requantization `q = clamp((max(y, 0)·mult + 2^(shift-1)) >> shift, 0, 2^bits - 1)`,
//!   with the calibrated accumulator `range` `[lo, hi]` that the encrypted evaluation must cover.
//!
//! `max_encrypted_layers` says how many leading layers may run encrypted; every split point must
//! come right after a `relu` (the encrypted part ends with a bootstrap).

use serde::{Deserialize, Serialize};

use crate::error::{FheError, Result};

/// The `format` string of a model document.
pub const MODEL_FORMAT: &str = "sealroom-fhe-model";
/// The version this library reads and writes.
pub const MODEL_VERSION: u32 = 1;
/// Largest model document accepted, in bytes.
pub const MAX_MODEL_BYTES: usize = 32 << 20;
/// Largest tensor (elements) at any point of a model.
pub const MAX_TENSOR: usize = 1 << 16;
/// Largest number of layers.
pub const MAX_LAYERS: usize = 64;
/// Largest absolute weight.
pub const MAX_WEIGHT: i64 = 1 << 15;
/// Largest absolute accumulator bound (worst case over all inputs).
pub const MAX_ACCUMULATOR: i64 = 1 << 46;
/// Largest number of multiply-adds per layer (dense in·out or conv work).
pub const MAX_LAYER_WORK: usize = 1 << 24;

/// Input description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// `[channels, height, width]`.
    pub shape: [usize; 3],
    /// Values are integers in `[0, 2^bits)`.
    pub bits: u32,
}

impl InputSpec {
    /// Number of input values.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the input has no values (never true for a validated model).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Largest input value.
    pub fn max_value(&self) -> i64 {
        (1i64 << self.bits) - 1
    }
}

/// Requantizing ReLU parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requant {
    /// Multiplier.
    pub mult: i64,
    /// Right shift (rounding half up).
    pub shift: u32,
    /// Output bit width: `q` in `[0, 2^bits)`.
    pub bits: u32,
    /// Calibrated accumulator range `[lo, hi]` (inclusive) for encrypted evaluation.
    pub range: [i64; 2],
}

impl Requant {
    /// Largest output value.
    pub fn qmax(&self) -> i64 {
        (1i64 << self.bits) - 1
    }

    /// The requantized ReLU of an accumulator value.
    pub fn apply(&self, y: i64) -> i64 {
        if y <= 0 {
            return 0;
        }
        let prod = i128::from(y) * i128::from(self.mult);
        let half = if self.shift == 0 {
            0
        } else {
            1i128 << (self.shift - 1)
        };
        let q = (prod + half) >> self.shift;
        q.min(i128::from(self.qmax())) as i64
    }
}

/// One layer of a model document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Layer {
    /// Fully connected layer over the flattened input.
    Dense {
        /// Input size (the flattened previous tensor).
        inputs: usize,
        /// Output size.
        outputs: usize,
        /// Row-major `outputs × inputs`.
        weights: Vec<i64>,
        /// `outputs` biases (accumulator units).
        bias: Vec<i64>,
    },
    /// 2-D convolution, square kernel, zero padding.
    Conv2d {
        /// Input channels.
        in_channels: usize,
        /// Output channels.
        out_channels: usize,
        /// Kernel side.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Zero padding on each side.
        padding: usize,
        /// `[out][in][kh][kw]` flattened.
        weights: Vec<i64>,
        /// `out_channels` biases.
        bias: Vec<i64>,
    },
    /// Sum pooling (average pooling with the divisor folded into the next requantization).
    AvgPool {
        /// Window side.
        kernel: usize,
        /// Stride.
        stride: usize,
    },
    /// ReLU with requantization.
    Relu(Requant),
}

impl Layer {
    /// Short name of the layer type.
    pub fn kind(&self) -> &'static str {
        match self {
            Layer::Dense { .. } => "dense",
            Layer::Conv2d { .. } => "conv2d",
            Layer::AvgPool { .. } => "avg_pool",
            Layer::Relu(_) => "relu",
        }
    }
}

/// A model document as published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelDoc {
    /// Always [`MODEL_FORMAT`].
    pub format: String,
    /// Always [`MODEL_VERSION`].
    pub version: u32,
    /// Short name.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Input description.
    pub input: InputSpec,
    /// Layers in order.
    pub layers: Vec<Layer>,
    /// How many leading layers may run encrypted (each split must follow a `relu`).
    pub max_encrypted_layers: usize,
    /// Class labels of the final output, if it is a classifier.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Free-form facts from training (accuracy, data set), not interpreted.
    #[serde(default)]
    pub metadata: serde_json::Value,
}

/// A linear layer flattened to sparse rows: `y[o] = bias[o] + Σ (i, w) in rows[o]: w·x[i]`.
#[derive(Debug, Clone)]
pub struct LinearRows {
    /// One row per output.
    pub rows: Vec<Vec<(u32, i64)>>,
    /// One bias per output.
    pub bias: Vec<i64>,
}

/// A validated layer with the shapes around it.
#[derive(Debug, Clone)]
pub enum Op {
    /// A linear map (dense, conv2d, avg_pool).
    Linear(LinearRows),
    /// A requantizing ReLU.
    Relu(Requant),
}

/// A validated model: the document plus what was derived from it.
#[derive(Debug, Clone)]
pub struct Model {
    doc: ModelDoc,
    ops: Vec<Op>,
    /// Tensor shape after each layer (`shapes[0]` is the input).
    shapes: Vec<[usize; 3]>,
}

fn bad(msg: impl Into<String>) -> FheError {
    FheError::InvalidModel(msg.into())
}

fn checked_len(shape: [usize; 3]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .filter(|&n| n > 0 && n <= MAX_TENSOR)
        .ok_or_else(|| {
            bad(format!(
                "tensor shape {shape:?} is empty or larger than {MAX_TENSOR} values"
            ))
        })
}

impl Model {
    /// Parses and validates a model document from JSON bytes (untrusted).
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_MODEL_BYTES {
            return Err(FheError::TooLarge {
                what: "model document",
                size: bytes.len(),
                limit: MAX_MODEL_BYTES,
            });
        }
        let doc: ModelDoc =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("not a model document: {e}")))?;
        Self::new(doc)
    }

    /// Validates a model document.
    pub fn new(doc: ModelDoc) -> Result<Self> {
        if doc.format != MODEL_FORMAT {
            return Err(bad(format!(
                "format is {:?}, expected {MODEL_FORMAT:?}",
                doc.format
            )));
        }
        if doc.version != MODEL_VERSION {
            return Err(bad(format!(
                "version {} is not supported (expected {MODEL_VERSION})",
                doc.version
            )));
        }
        if doc.name.is_empty() || doc.name.len() > 100 {
            return Err(bad("name must have 1 to 100 characters"));
        }
        if !(1..=8).contains(&doc.input.bits) {
            return Err(bad("input.bits must be 1 to 8"));
        }
        let mut shape = doc.input.shape;
        checked_len(shape)?;
        if doc.layers.is_empty() || doc.layers.len() > MAX_LAYERS {
            return Err(bad(format!("a model has 1 to {MAX_LAYERS} layers")));
        }
        let mut shapes = vec![shape];
        let mut ops = Vec::with_capacity(doc.layers.len());
        // Worst-case absolute value of the current tensor's elements.
        let mut bound: i64 = doc.input.max_value();
        for (idx, layer) in doc.layers.iter().enumerate() {
            let ctx = |m: String| bad(format!("layer {idx} ({}): {m}", layer.kind()));
            let (op, out_shape) = match layer {
                Layer::Dense {
                    inputs,
                    outputs,
                    weights,
                    bias,
                } => {
                    let n_in = checked_len(shape)?;
                    if *inputs != n_in {
                        return Err(ctx(format!(
                            "inputs is {inputs} but the previous tensor has {n_in} values"
                        )));
                    }
                    let out_shape = [*outputs, 1, 1];
                    checked_len(out_shape).map_err(|e| ctx(e.to_string()))?;
                    if n_in.saturating_mul(*outputs) > MAX_LAYER_WORK {
                        return Err(ctx("too many weights".into()));
                    }
                    if weights.len() != n_in * outputs || bias.len() != *outputs {
                        return Err(ctx(format!(
                            "expected {} weights and {outputs} biases, found {} and {}",
                            n_in * outputs,
                            weights.len(),
                            bias.len()
                        )));
                    }
                    let rows = (0..*outputs)
                        .map(|o| {
                            weights[o * n_in..(o + 1) * n_in]
                                .iter()
                                .enumerate()
                                .filter(|(_, w)| **w != 0)
                                .map(|(i, &w)| (i as u32, w))
                                .collect()
                        })
                        .collect();
                    (
                        Op::Linear(LinearRows {
                            rows,
                            bias: bias.clone(),
                        }),
                        out_shape,
                    )
                }
                Layer::Conv2d {
                    in_channels,
                    out_channels,
                    kernel,
                    stride,
                    padding,
                    weights,
                    bias,
                } => {
                    let [c, h, w] = shape;
                    if *in_channels != c {
                        return Err(ctx(format!(
                            "in_channels is {in_channels} but the input has {c} channels"
                        )));
                    }
                    if !(1..=16).contains(kernel)
                        || !(1..=8).contains(stride)
                        || *padding >= *kernel
                    {
                        return Err(ctx(
                            "kernel must be 1..=16, stride 1..=8, padding < kernel".into()
                        ));
                    }
                    if h + 2 * padding < *kernel || w + 2 * padding < *kernel {
                        return Err(ctx("kernel larger than the padded input".into()));
                    }
                    let oh = (h + 2 * padding - kernel) / stride + 1;
                    let ow = (w + 2 * padding - kernel) / stride + 1;
                    let out_shape = [*out_channels, oh, ow];
                    let n_out = checked_len(out_shape).map_err(|e| ctx(e.to_string()))?;
                    let k2 = kernel * kernel;
                    if n_out.saturating_mul(c).saturating_mul(k2) > MAX_LAYER_WORK {
                        return Err(ctx("too much work".into()));
                    }
                    if weights.len() != out_channels * c * k2 || bias.len() != *out_channels {
                        return Err(ctx(format!(
                            "expected {} weights and {out_channels} biases, found {} and {}",
                            out_channels * c * k2,
                            weights.len(),
                            bias.len()
                        )));
                    }
                    let mut rows = Vec::with_capacity(n_out);
                    let mut biases = Vec::with_capacity(n_out);
                    for o in 0..*out_channels {
                        for y in 0..oh {
                            for x in 0..ow {
                                let mut row = Vec::new();
                                for ci in 0..c {
                                    for ky in 0..*kernel {
                                        for kx in 0..*kernel {
                                            let iy = (y * stride + ky) as isize - *padding as isize;
                                            let ix = (x * stride + kx) as isize - *padding as isize;
                                            if iy < 0
                                                || ix < 0
                                                || iy >= h as isize
                                                || ix >= w as isize
                                            {
                                                continue;
                                            }
                                            let wv =
                                                weights[((o * c + ci) * kernel + ky) * kernel + kx];
                                            if wv != 0 {
                                                let i = ci * h * w + iy as usize * w + ix as usize;
                                                row.push((i as u32, wv));
                                            }
                                        }
                                    }
                                }
                                rows.push(row);
                                biases.push(bias[o]);
                            }
                        }
                    }
                    (Op::Linear(LinearRows { rows, bias: biases }), out_shape)
                }
                Layer::AvgPool { kernel, stride } => {
                    let [c, h, w] = shape;
                    if !(1..=16).contains(kernel)
                        || !(1..=16).contains(stride)
                        || *kernel > h
                        || *kernel > w
                    {
                        return Err(ctx(
                            "kernel must be 1..=16 and fit the input, stride 1..=16".into(),
                        ));
                    }
                    let oh = (h - kernel) / stride + 1;
                    let ow = (w - kernel) / stride + 1;
                    let out_shape = [c, oh, ow];
                    let n_out = checked_len(out_shape).map_err(|e| ctx(e.to_string()))?;
                    let mut rows = Vec::with_capacity(n_out);
                    for ci in 0..c {
                        for y in 0..oh {
                            for x in 0..ow {
                                let mut row = Vec::with_capacity(kernel * kernel);
                                for ky in 0..*kernel {
                                    for kx in 0..*kernel {
                                        let i =
                                            ci * h * w + (y * stride + ky) * w + x * stride + kx;
                                        row.push((i as u32, 1));
                                    }
                                }
                                rows.push(row);
                            }
                        }
                    }
                    (
                        Op::Linear(LinearRows {
                            rows,
                            bias: vec![0; n_out],
                        }),
                        out_shape,
                    )
                }
                Layer::Relu(r) => {
                    if !(1..=8).contains(&r.bits)
                        || r.shift > 62
                        || !(1..=(1i64 << 31)).contains(&r.mult)
                    {
                        return Err(ctx(
                            "bits must be 1..=8, shift <= 62, mult in 1..=2^31".into()
                        ));
                    }
                    let [lo, hi] = r.range;
                    if lo >= hi || lo < -MAX_ACCUMULATOR || hi > MAX_ACCUMULATOR {
                        return Err(ctx(format!(
                            "range [{lo}, {hi}] must have lo < hi within ±2^46"
                        )));
                    }
                    (Op::Relu(*r), shape)
                }
            };
            bound = match &op {
                Op::Linear(l) => {
                    if l.rows.iter().flatten().any(|(_, w)| w.abs() > MAX_WEIGHT)
                        || l.bias.iter().any(|b| b.abs() > MAX_ACCUMULATOR)
                    {
                        return Err(ctx(format!(
                            "weights must be within ±{MAX_WEIGHT}, biases within ±2^46"
                        )));
                    }
                    let mut worst: i64 = 0;
                    for (row, b) in l.rows.iter().zip(&l.bias) {
                        let s = row
                            .iter()
                            .try_fold(b.abs(), |acc, (_, w)| {
                                acc.checked_add(w.abs().checked_mul(bound)?)
                            })
                            .filter(|&s| s <= MAX_ACCUMULATOR)
                            .ok_or_else(|| ctx("worst-case accumulator exceeds 2^46".into()))?;
                        worst = worst.max(s);
                    }
                    worst
                }
                Op::Relu(r) => r.qmax(),
            };
            ops.push(op);
            shape = out_shape;
            shapes.push(shape);
        }
        let model = Model { doc, ops, shapes };
        if model.doc.max_encrypted_layers > 0 {
            model.check_split(model.doc.max_encrypted_layers)?;
        }
        Ok(model)
    }

    /// The document.
    pub fn doc(&self) -> &ModelDoc {
        &self.doc
    }

    /// The validated layers.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Number of input values.
    pub fn input_len(&self) -> usize {
        self.doc.input.len()
    }

    /// Number of values after the first `k` layers.
    pub fn len_after(&self, k: usize) -> usize {
        self.shapes.get(k).map(|s| s.iter().product()).unwrap_or(0)
    }

    /// Number of final outputs.
    pub fn output_len(&self) -> usize {
        self.len_after(self.ops.len())
    }

    /// Checks that the first `k` layers may run encrypted: `1 <= k <= max_encrypted_layers` and
    /// layer `k - 1` is a `relu`.
    pub fn check_split(&self, k: usize) -> Result<()> {
        let max = self.doc.max_encrypted_layers;
        if k == 0 || k > max || k > self.ops.len() {
            return Err(FheError::InvalidSplit(format!(
                "{k} encrypted layers requested; this model allows 1 to {max}"
            )));
        }
        if !matches!(self.ops[k - 1], Op::Relu(_)) {
            return Err(FheError::InvalidSplit(format!(
                "the encrypted part must end with a relu layer, but layer {} is {}",
                k - 1,
                self.doc.layers[k - 1].kind()
            )));
        }
        Ok(())
    }

    /// The split points this model allows (values of `k`).
    pub fn allowed_splits(&self) -> Vec<usize> {
        (1..=self.doc.max_encrypted_layers.min(self.ops.len()))
            .filter(|&k| self.check_split(k).is_ok())
            .collect()
    }

    /// Checks an input vector against the input spec.
    pub fn check_input(&self, x: &[i64]) -> Result<()> {
        if x.len() != self.input_len() {
            return Err(FheError::InvalidInput(format!(
                "expected {} values, found {}",
                self.input_len(),
                x.len()
            )));
        }
        let max = self.doc.input.max_value();
        if let Some(v) = x.iter().find(|v| !(0..=max).contains(*v)) {
            return Err(FheError::InvalidInput(format!(
                "value {v} is outside 0..={max}"
            )));
        }
        Ok(())
    }

    /// Runs layers `from..to` in the clear on integer activations.
    pub fn forward_range(&self, from: usize, to: usize, x: &[i64]) -> Result<Vec<i64>> {
        if from > to || to > self.ops.len() {
            return Err(FheError::InvalidSplit(format!(
                "layer range {from}..{to} is not within the model"
            )));
        }
        if x.len() != self.len_after(from) {
            return Err(FheError::InvalidInput(format!(
                "layer {from} expects {} values, found {}",
                self.len_after(from),
                x.len()
            )));
        }
        let mut cur = x.to_vec();
        for op in &self.ops[from..to] {
            cur = match op {
                Op::Linear(l) => l
                    .rows
                    .iter()
                    .zip(&l.bias)
                    .map(|(row, b)| row.iter().fold(*b, |a, (i, w)| a + w * cur[*i as usize]))
                    .collect(),
                Op::Relu(r) => cur.iter().map(|&y| r.apply(y)).collect(),
            };
        }
        Ok(cur)
    }

    /// Runs the whole model in the clear.
    pub fn forward(&self, x: &[i64]) -> Result<Vec<i64>> {
        self.check_input(x)?;
        self.forward_range(0, self.ops.len(), x)
    }

    /// The accumulators entering each `relu` layer among the first `k` layers, for one input
    /// (used for calibration reports).
    pub fn accumulators(&self, k: usize, x: &[i64]) -> Result<Vec<Vec<i64>>> {
        let mut out = Vec::new();
        let mut cur = x.to_vec();
        for (idx, op) in self.ops.iter().enumerate().take(k) {
            if matches!(op, Op::Relu(_)) {
                out.push(cur.clone());
            }
            cur = self.forward_range(idx, idx + 1, &cur)?;
        }
        Ok(out)
    }
}

/// Index of the largest value (first one on ties).
pub fn argmax(v: &[i64]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}
