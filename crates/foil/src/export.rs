//! `foil export`: a run's policy as a Hugging Face model directory, or (`--format gguf`)
//! as one GGUF file llama.cpp serves.

use std::path::Path;

use anyhow::bail;
use foil_core::backend::parse_device;

use crate::load::{PolicyPath, policy_from_checkpoint};

/// What `foil export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExportFormat {
    /// A Hugging Face model directory (`config.json`, `model.safetensors`, tokenizer).
    #[default]
    Safetensors,
    /// One GGUF file, matrices in the given type.
    Gguf(foil_core::policy::GgufDtype),
}

/// Writes the newest checkpoint of `run` (or the checkpoint `run` names) to `out` as a
/// Hugging Face model directory.
pub fn export(run: &Path, out: &Path) -> anyhow::Result<()> {
    export_as(run, out, ExportFormat::Safetensors)
}

/// Writes the newest checkpoint of `run` (or the checkpoint `run` names) to `out` in
/// `format`: a directory for safetensors, a file for GGUF.
pub fn export_as(run: &Path, out: &Path, format: ExportFormat) -> anyhow::Result<()> {
    let (run, ckpt) = match PolicyPath::resolve(run)? {
        PolicyPath::Checkpoint { run, checkpoint } => (run, checkpoint),
        PolicyPath::Pretrained(p) => bail!(
            "{} is already a pretrained model; export takes a run or a checkpoint",
            p.display()
        ),
    };
    match format {
        ExportFormat::Safetensors => {
            if out.exists() && out.read_dir()?.next().is_some() {
                bail!("{} exists and is not empty", out.display());
            }
        }
        ExportFormat::Gguf(_) => {
            if out.exists() {
                bail!("{} exists; GGUF export writes a new file", out.display());
            }
        }
    }
    let (policy, _) = policy_from_checkpoint(&run, &ckpt, &parse_device("cpu")?)?;
    match format {
        ExportFormat::Safetensors => policy.export(out),
        ExportFormat::Gguf(dtype) => policy.export_gguf(out, dtype),
    }
}
