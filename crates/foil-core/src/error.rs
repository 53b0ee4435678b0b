//! Errors that a researcher sees. Every variant says where the problem is and what to do.

use std::path::PathBuf;

/// foil's error type. Most code uses [`anyhow`] for context chains; these variants are the
/// ones a caller (CLI, tests) wants to match on.
#[derive(Debug, thiserror::Error)]
pub enum FoilError {
    /// A recipe that cannot be parsed or validated. `message` already names file, line,
    /// column and field.
    #[error("{message}")]
    Recipe { message: String },
    /// A bad `device:` string.
    #[error("unknown device `{given}`: expected one of {expected}")]
    Device { given: String, expected: String },
    /// A device this machine cannot open (e.g. `cuda` without an NVIDIA driver).
    #[error("device `{given}` is not available here: {why}")]
    DeviceUnavailable { given: String, why: String },
    /// A loss (or gradient) that is NaN or infinite: training stops, the last checkpoint
    /// is left as it was.
    #[error(
        "non-finite loss ({value}) at stage {stage} `{stage_type}`, step {step}: {detail}. \
         Nothing was written for this step; the last checkpoint is {last_checkpoint}"
    )]
    NonFiniteLoss {
        value: f32,
        stage: usize,
        stage_type: String,
        step: usize,
        detail: String,
        last_checkpoint: String,
    },
    /// A run directory that cannot be resumed.
    #[error("cannot resume from {dir}: {why}")]
    Resume { dir: PathBuf, why: String },
}

/// The result type used across foil.
pub type Result<T, E = anyhow::Error> = std::result::Result<T, E>;
