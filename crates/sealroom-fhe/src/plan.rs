//! How values are encoded on the torus for an encrypted split, shared by the client, the server
//! and the plaintext simulation so that all three agree bit for bit.
//!
//! The first `k` layers form *stages*: the linear layers up to a `relu`, then that `relu`. A
//! stage's input values `v` are encrypted (or bootstrapped) as `v·Δ`, linear layers act on the
//! ciphertexts with the clear integer weights (`Σ w·ct + b·Δ`), and the accumulator `y` is then
//! shifted to `(y - lo)·Δ + MARGIN`, so that the calibrated range `[lo, hi]` fills the half torus
//! `[0, 2^63)` with a margin of `2^58` (1/32) at each end. One programmable bootstrap per neuron
//! then reads the phase to `log2(2N)` bits and applies a lookup table that holds, for each box,
//! the requantized ReLU of the accumulator at the box's centre, already encoded for the next
//! stage (`q·Δ_next`), or for the client (`q·2^(63-bits)`) after the last encrypted stage.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::model::{Model, Op, Requant};

/// Margin kept free at each end of the half torus.
pub const MARGIN: u64 = 1 << 58;

/// Encoding of one stage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    /// Index of the stage's `relu` layer.
    pub relu_layer: usize,
    /// First layer of the stage.
    pub first_layer: usize,
    /// The requantization.
    pub relu: Requant,
    /// Scale of the stage's values on the torus.
    pub delta: u64,
    /// Scale of the values the stage's bootstrap outputs.
    pub next_delta: u64,
}

impl Stage {
    /// Constant added to each accumulator's body before the bootstrap: `MARGIN - lo·Δ`.
    pub fn offset(&self) -> u64 {
        MARGIN.wrapping_sub((self.relu.range[0] as u64).wrapping_mul(self.delta))
    }

    /// Accumulator value at the centre of box `i` (of `2N`), rounded to an integer.
    pub fn box_value(&self, i: usize, polynomial_size: usize) -> i64 {
        let log2_2n = (2 * polynomial_size).trailing_zeros();
        let centre = (i as i128) << (64 - log2_2n);
        let rel = centre - i128::from(MARGIN);
        let d = i128::from(self.delta);
        // Round to nearest.
        let y = if rel >= 0 {
            (rel + d / 2) / d
        } else {
            -((-rel + d / 2) / d)
        };
        (y + i128::from(self.relu.range[0])) as i64
    }

    /// The lookup table (`N` values, already encoded for the next stage) of this stage's bootstrap.
    pub fn lut(&self, polynomial_size: usize) -> Vec<u64> {
        (0..polynomial_size)
            .map(|i| (self.lut_q(i, polynomial_size) as u64).wrapping_mul(self.next_delta))
            .collect()
    }

    /// Requantized output for box `i < N`.
    pub fn lut_q(&self, i: usize, polynomial_size: usize) -> i64 {
        self.relu.apply(self.box_value(i, polynomial_size))
    }
}

/// The encodings of a split after `k` layers.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Layers run encrypted.
    pub k: usize,
    /// Stages in order.
    pub stages: Vec<Stage>,
    /// Bits of the values the client decrypts.
    pub output_bits: u32,
}

/// Scale that maps `[lo, hi]` onto the half torus less the margins.
pub fn stage_delta(r: &Requant) -> u64 {
    let span = (r.range[1] - r.range[0]).max(1) as u128;
    let usable = (1u128 << 63) - 2 * u128::from(MARGIN);
    (usable / span).max(1) as u64
}

/// Scale of the values the client decrypts.
pub fn output_delta(bits: u32) -> u64 {
    1u64 << (63 - bits)
}

impl Plan {
    /// The plan for running the first `k` layers of `model` encrypted.
    pub fn new(model: &Model, k: usize) -> Result<Self> {
        model.check_split(k)?;
        let mut relus = Vec::new();
        let mut first = 0;
        for (idx, op) in model.ops().iter().enumerate().take(k) {
            if let Op::Relu(r) = op {
                relus.push((first, idx, *r));
                first = idx + 1;
            }
        }
        let mut stages: Vec<Stage> = relus
            .iter()
            .map(|&(first_layer, relu_layer, relu)| Stage {
                relu_layer,
                first_layer,
                relu,
                delta: stage_delta(&relu),
                next_delta: 0,
            })
            .collect();
        let output_bits = stages.last().map(|s| s.relu.bits).unwrap_or(8);
        for i in 0..stages.len() {
            stages[i].next_delta = match stages.get(i + 1) {
                Some(next) => next.delta,
                None => output_delta(output_bits),
            };
        }
        Ok(Plan {
            k,
            stages,
            output_bits,
        })
    }

    /// Scale of the encrypted input values.
    pub fn input_delta(&self) -> u64 {
        self.stages.first().map(|s| s.delta).unwrap_or(1)
    }

    /// Number of bootstraps a request costs: one per `relu` output among the first `k` layers.
    pub fn bootstrap_count(&self, model: &Model) -> usize {
        self.stages
            .iter()
            .map(|s| model.len_after(s.relu_layer + 1))
            .sum()
    }
}

/// What a client needs to encrypt for, and decode from, a split (no weights).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientPlan {
    /// Layers run encrypted.
    pub k: usize,
    /// Number of input values.
    pub input_len: usize,
    /// Input values are in `[0, 2^input_bits)`.
    pub input_bits: u32,
    /// Scale of the encrypted input values on the torus.
    pub input_delta: u64,
    /// Number of activations returned.
    pub output_len: usize,
    /// Bits of each activation.
    pub output_bits: u32,
    /// Bootstraps the server performs.
    pub bootstraps: usize,
}

impl Plan {
    /// The client's view of this plan.
    pub fn client_plan(&self, model: &Model) -> ClientPlan {
        ClientPlan {
            k: self.k,
            input_len: model.input_len(),
            input_bits: model.doc().input.bits,
            input_delta: self.input_delta(),
            output_len: model.len_after(self.k),
            output_bits: self.output_bits,
            bootstraps: self.bootstrap_count(model),
        }
    }
}

/// Decodes a decrypted phase of the final stage into an activation in `[0, 2^bits)`.
pub fn decode_output(phase: u64, bits: u32) -> i64 {
    let shift = 63 - bits;
    let half = 1u64 << (shift - 1);
    // Signed value in [-2^bits, 2^bits): negacyclic wrap-around shows up as negative.
    let v = (phase.wrapping_add(half) >> shift) as i64;
    let modulus = 1i64 << (bits + 1);
    let signed = if v >= modulus / 2 { v - modulus } else { v };
    signed.clamp(0, (1i64 << bits) - 1)
}
