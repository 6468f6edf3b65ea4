//! Reference values shared by the hardware verifiers.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::Measurement;

/// Which launch measurements a verifier accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReferenceMeasurements {
    /// Any measurement. Only for callers that check the measurement themselves (the broker's
    /// per-project policy does); the name is meant to stand out in review.
    AnyCheckedByCaller,
    /// One of these values.
    OneOf(Vec<Measurement>),
}

impl ReferenceMeasurements {
    /// Accepts `found` if it is one of the reference values (constant-time per comparison).
    pub fn check(&self, found: &[u8]) -> Result<()> {
        match self {
            ReferenceMeasurements::AnyCheckedByCaller => Ok(()),
            ReferenceMeasurements::OneOf(list) => {
                let ok = list.iter().any(|m| {
                    aws_lc_rs::constant_time::verify_slices_are_equal(&m.0, found).is_ok()
                });
                if ok {
                    Ok(())
                } else {
                    Err(Error::MeasurementNotAllowed {
                        measurement: hex::encode(found),
                        count: list.len(),
                    })
                }
            }
        }
    }
}
