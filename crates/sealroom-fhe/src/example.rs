//! The bundled example: scikit-learn's 8×8 digits (1797 images, 17 grey levels, shipped inside
//! the `scikit-learn` package; UCI "Optical Recognition of Handwritten Digits", CC BY 4.0) and a
//! small quantized MLP trained on it offline by `examples/fhe/train.py`. Both are compiled into
//! the library, so nothing is read from the network or the working directory at run time.

use crate::error::{FheError, Result};
use crate::model::Model;

/// `examples/fhe/digits.txt`: `label,64 base-17 digits` per line.
pub const DIGITS_TXT: &str = include_str!("../../../examples/fhe/digits.txt");
/// `examples/fhe/digits-mlp.json`: the quantized classifier.
pub const DIGITS_MODEL_JSON: &str = include_str!("../../../examples/fhe/digits-mlp.json");

/// One 8×8 image with raw values 0..=16 and its label.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Raw grey levels, row-major.
    pub pixels: [u8; 64],
    /// Digit 0..=9.
    pub label: u8,
}

impl Sample {
    /// The model input: each pixel quantized to 4 bits, `(v·15 + 8) / 16` (as in `train.py`).
    pub fn input(&self) -> Vec<i64> {
        self.pixels
            .iter()
            .map(|&v| (i64::from(v) * 15 + 8) / 16)
            .collect()
    }
}

/// The data set split the same way as `train.py`: every fifth image (index % 5 == 0) is test.
#[derive(Debug, Clone)]
pub struct Digits {
    /// Training images (1437).
    pub train: Vec<Sample>,
    /// Test images (360).
    pub test: Vec<Sample>,
}

/// Parses the digits file.
pub fn parse_digits(text: &str) -> Result<Digits> {
    let mut train = Vec::new();
    let mut test = Vec::new();
    let mut index = 0usize;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |m: &str| FheError::InvalidDataset(format!("line {}: {m}", n + 1));
        let (label, px) = line
            .split_once(',')
            .ok_or_else(|| bad("expected label,pixels"))?;
        let label: u8 = label
            .parse()
            .ok()
            .filter(|l| *l <= 9)
            .ok_or_else(|| bad("label must be 0..=9"))?;
        if px.len() != 64 {
            return Err(bad("expected 64 pixels"));
        }
        let mut pixels = [0u8; 64];
        for (p, c) in pixels.iter_mut().zip(px.chars()) {
            *p = c
                .to_digit(17)
                .map(|d| d as u8)
                .ok_or_else(|| bad("pixels are base-17 digits 0-9a-g"))?;
        }
        let s = Sample { pixels, label };
        if index.is_multiple_of(5) {
            test.push(s);
        } else {
            train.push(s);
        }
        index += 1;
    }
    Ok(Digits { train, test })
}

/// The bundled data set.
pub fn digits() -> Result<Digits> {
    parse_digits(DIGITS_TXT)
}

/// The bundled model.
pub fn digits_model() -> Result<Model> {
    Model::from_json(DIGITS_MODEL_JSON.as_bytes())
}
