//! The `foil` command's library side: links every part crate so that their registrations
//! are present, and exposes [`link_all`] for binaries and tests that need the full
//! registry.

pub mod bench;
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

/// `mi_option_purge_delay`: entry 15 of `mi_option_t` in mimalloc.h (v2 and v3, as vendored
/// by libmimalloc-sys 0.1.49); the Rust bindings do not name it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tells mimalloc (the `foil` binary's allocator) to keep the pages of freed memory for
/// reuse instead of returning them to the kernel a while after the free (its
/// `purge_delay`: 1000 ms in the mimalloc v3 that libmimalloc-sys builds, 10 ms in v2).
/// A training step frees and re-allocates the same large activation and
/// gradient buffers every time; returned pages come back zero-filled by the kernel
/// (`clear_page_erms`, 8.6 % of the train-step profile). With this, the train-step bench
/// had ~25× fewer page faults and took 1.20 / 1.29 s instead of 1.35 / 1.37 s
/// (docs/benchmarks.md). The price: the process keeps its peak memory until it exits.
pub fn keep_freed_pages() {
    // SAFETY: sets a process-wide integer option; mimalloc reads it on its next purge.
    // −1 = never purge
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

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

#[cfg(test)]
mod allocator_tests {
    /// Entry 15 is the purge delay: its default is 1000 (ms, mimalloc v3; 10 in v2), where
    /// its neighbours (`eager_commit_delay` = 1, `use_numa_nodes` = 0) differ; after the
    /// call it is −1 (−1 before too when another test of this binary called it first).
    #[test]
    fn keep_freed_pages_sets_mimallocs_purge_delay() {
        let get = || unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        let before = get();
        assert!(
            [1000, 10, -1].contains(&before),
            "option 15 = {before}, not purge_delay"
        );
        super::keep_freed_pages();
        assert_eq!(get(), -1);
    }
}
