//! Shared set-up of the benches: the quickstart's task and policy shape.

use foil_core::policy::Policy;
use foil_core::{PolicyConfig, Task, TaskData};
use foil_data::Arithmetic;
use foil_models::TinyGpt;

/// The backends compared: `device:` strings.
pub const DEVICES: [&str; 2] = ["cpu-flex", "cpu-ndarray"];

/// The quickstart task.
pub fn task() -> TaskData {
    Arithmetic {
        train: 256,
        test: 64,
        ..Default::default()
    }
    .build(0)
    .unwrap()
}

/// The quickstart policy on `device`.
pub fn policy(task: &TaskData, device: &str) -> Box<dyn Policy> {
    let d = foil_core::backend::parse_device(device).unwrap();
    TinyGpt {
        d_model: 64,
        layers: 2,
        heads: 4,
        context: 48,
        mlp_ratio: 4,
        init_seed: 0,
    }
    .build(task.tokenizer.vocab_size(), &d, 0)
    .unwrap()
}

/// The label of a device in bench names (`flex`, `ndarray`).
pub fn label(device: &str) -> &str {
    device.trim_start_matches("cpu-")
}
