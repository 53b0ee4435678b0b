//! Fixtures shared by this crate's unit tests.

use foil_core::backend::parse_device;
use foil_core::policy::InferenceModel;
use foil_core::{PolicyConfig, Task, TaskData};
use foil_data::Arithmetic;
use foil_models::TinyGpt;

/// A randomly initialised one-layer `tiny_gpt` (d 32, 2 heads, init seed 1) on the CPU,
/// as an inference model over `vocab` ids with `context` positions.
pub fn tiny_model(vocab: usize, context: usize) -> Box<dyn InferenceModel> {
    let gpt = TinyGpt {
        d_model: 32,
        layers: 1,
        heads: 2,
        context,
        mlp_ratio: 2,
        init_seed: 1,
        precision: Default::default(),
    };
    gpt.build(vocab, &parse_device("cpu").unwrap(), 0)
        .unwrap()
        .inference()
}

/// The arithmetic task (4 train, 2 test problems, seed 0) and a [`tiny_model`] for its
/// tokenizer with 40 positions.
pub fn arithmetic_setup() -> (Box<dyn InferenceModel>, TaskData) {
    let task = Arithmetic {
        train: 4,
        test: 2,
        ..Default::default()
    }
    .build(0)
    .unwrap();
    (tiny_model(task.tokenizer.vocab_size(), 40), task)
}
