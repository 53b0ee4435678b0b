//! The `foil` command's library side: links every part crate so that their registrations
//! are present, and exposes [`link_all`] for binaries and tests that need the full
//! registry.

pub mod export;
pub mod generate;
pub mod load;
pub mod selftest;

// Linking these crates is what registers their parts (typetag + inventory).
use foil_advantages as _;
use foil_data as _;
use foil_eval as _;
use foil_models as _;
use foil_objectives as _;
use foil_plugin_recsys as _;
use foil_rewards as _;
use foil_samplers as _;
use foil_trainers as _;
use foil_verifiers as _;

/// Call once from any binary or test that deserialises recipes: it forces every part
/// crate to be linked (the linker drops crates nothing refers to).
pub fn link_all() {
    std::hint::black_box((
        std::any::type_name::<foil_advantages::Grpo>(),
        std::any::type_name::<foil_data::Arithmetic>(),
        std::any::type_name::<foil_models::TinyGpt>(),
        std::any::type_name::<foil_objectives::PpoClip>(),
        std::any::type_name::<foil_plugin_recsys::RelMf>(),
        std::any::type_name::<foil_samplers::Local>(),
        std::any::type_name::<foil_trainers::Rl>(),
        std::any::type_name::<foil_verifiers::Numeric>(),
        std::any::type_name::<foil_rewards::RewardModelStage>(),
    ));
}
