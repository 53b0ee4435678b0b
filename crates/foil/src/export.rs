//! `foil export`: a run's policy as a Hugging Face model directory.

use std::path::Path;

use anyhow::bail;
use foil_core::backend::parse_device;

use crate::load::{PolicyPath, policy_from_checkpoint};

/// Writes the newest checkpoint of `run` (or the checkpoint `run` names) to `out`.
pub fn export(run: &Path, out: &Path) -> anyhow::Result<()> {
    let (run, ckpt) = match PolicyPath::resolve(run)? {
        PolicyPath::Checkpoint { run, checkpoint } => (run, checkpoint),
        PolicyPath::Pretrained(p) => bail!(
            "{} is already a pretrained model; export takes a run or a checkpoint",
            p.display()
        ),
    };
    if out.exists() && out.read_dir()?.next().is_some() {
        bail!("{} exists and is not empty", out.display());
    }
    let (policy, _) = policy_from_checkpoint(&run, &ckpt, &parse_device("cpu")?)?;
    policy.export(out)
}
