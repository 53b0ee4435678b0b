//! The one concrete tensor backend and the run-time device choice.
//!
//! Every tensor-touching trait uses [`B`], burn's `Dispatch` backend: a single type whose
//! device (flex or ndarray on the CPU, CUDA when compiled with `--features cuda`, each with
//! or without autodiff) is chosen when the recipe is read. Training tensors live on
//! [`train_device`] (autodiff), rollouts and evaluation on the plain inner device, so no
//! autodiff graph is ever built during generation.
//!
//! `device: cpu` means flex, which measured faster than ndarray on our train step and
//! generation bench (`cargo xtask bench`, numbers in README.md); `cpu-ndarray` keeps
//! ndarray selectable.

use burn::DispatchDevice;
use burn::tensor::backend::Backend;

use crate::error::FoilError;

/// The concrete backend of every tensor in foil (`burn::backend::Dispatch`).
pub type B = burn::Dispatch;
/// A device of [`B`].
pub type Device = DispatchDevice;

/// The device strings `parse_device` accepts, for error messages and `foil list`.
pub fn device_names() -> Vec<&'static str> {
    let mut v = vec!["cpu", "cpu-flex", "cpu-ndarray"];
    if cfg!(feature = "cuda") {
        v.push("cuda");
        v.push("cuda:N");
    }
    v
}

/// Parses a recipe's `device:` string into the inference (non-autodiff) device.
pub fn parse_device(s: &str) -> Result<Device, FoilError> {
    let bad = || FoilError::Device {
        given: s.to_string(),
        expected: device_names().join(", "),
    };
    match s.trim() {
        "cpu" | "cpu-flex" | "flex" => Ok(DispatchDevice::Flex(burn::backend::flex::FlexDevice)),
        "cpu-ndarray" | "ndarray" => Ok(DispatchDevice::NdArray(
            burn::backend::ndarray::NdArrayDevice::Cpu,
        )),
        #[cfg(feature = "cuda")]
        other if other == "cuda" || other.starts_with("cuda:") => {
            let index = match other.strip_prefix("cuda:") {
                None => 0,
                Some(i) => i.parse::<usize>().map_err(|_| bad())?,
            };
            Ok(DispatchDevice::Cuda(burn::backend::cuda::CudaDevice::new(
                index,
            )))
        }
        _ => Err(bad()),
    }
}

/// [`parse_device`] for a device about to be used: a CUDA device is also checked for the
/// NVIDIA driver library and for its index (`cuda:3` on a machine with two GPUs), either of
/// which burn-cuda would report by panicking on a worker thread at first use. (Recipe validation calls `parse_device` alone, so a CUDA recipe
/// can be checked on a machine without a GPU.)
pub fn open_device(s: &str) -> Result<Device, FoilError> {
    let device = parse_device(s)?;
    #[cfg(feature = "cuda")]
    if let DispatchDevice::Cuda(cuda) = &device {
        let unavailable = |why: String| FoilError::DeviceUnavailable {
            given: s.trim().to_string(),
            why,
        };
        let count = cuda_device_count().map_err(unavailable)?;
        if cuda.index >= count {
            return Err(unavailable(format!(
                "this machine has {count} CUDA device(s): use cuda:0 .. cuda:{}",
                count.saturating_sub(1)
            )));
        }
        configure_kernel_cache();
    }
    Ok(device)
}

/// Turns on cubecl's on-disk cache of compiled kernels (PTX) before the first CUDA kernel,
/// unless a `cubecl.toml` / `burn.toml` already names a `[compilation] cache` or
/// `FOIL_KERNEL_CACHE=0` is set.
///
/// Why: with fusion and autotune a CUDA process compiles hundreds of kernels with NVRTC
/// (every autotune candidate is compiled before it is timed); on an H200 the first train
/// step of the d 1024 GPT took 62 s in f32 and 150 s in bf16 at 0 % GPU use
/// (`docs/benchmarks.md`, session 10). cubecl keeps the autotune results on disk by
/// default but not the kernels; with the cache a second process loads the PTX instead of
/// compiling it. It lives where cubecl keeps its autotune cache by default (`target/`
/// beside the nearest `Cargo.toml`, else the user cache directory, `~/.cache/cubecl`).
#[cfg(feature = "cuda")]
fn configure_kernel_cache() {
    use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig, cache::CacheConfig};
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // once cubecl has read its config it cannot be changed (`set` would panic)
        if CubeClRuntimeConfig::storage().lock().is_some() {
            return;
        }
        let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
        if kernel_cache_wanted(std::env::var("FOIL_KERNEL_CACHE").ok().as_deref())
            && config.compilation.cache.is_none()
        {
            config.compilation.cache = Some(CacheConfig::Target);
        }
        CubeClRuntimeConfig::set(config);
    });
}

/// `FOIL_KERNEL_CACHE`: unset or anything but `0` / `false` / `off` keeps the cache on.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
fn kernel_cache_wanted(setting: Option<&str>) -> bool {
    !matches!(
        setting.map(|s| s.trim().to_ascii_lowercase()).as_deref(),
        Some("0" | "false" | "off")
    )
}

/// The number of CUDA devices the driver reports (`cuInit` + `cuDeviceGetCount`), or why
/// it cannot say: no driver library (under the names cudarc looks for first), or a driver
/// call that fails (e.g. no device, or a driver older than the toolkit).
#[cfg(feature = "cuda")]
fn cuda_device_count() -> Result<usize, String> {
    const NO_DRIVER: &str = "the NVIDIA driver library (libcuda.so.1) does not load: no NVIDIA \
                             driver on this machine, or its folder is missing from \
                             LD_LIBRARY_PATH (e.g. /usr/local/nvidia/lib64)";
    // SAFETY: loading the driver library runs its initialisers, as burn-cuda's own loading
    // would next; the two entry points have the driver API's C signatures
    // (`CUresult cuInit(unsigned int)`, `CUresult cuDeviceGetCount(int *)`), and the
    // library outlives the calls.
    unsafe {
        let lib = ["libcuda.so.1", "libcuda.so", "nvcuda.dll"]
            .iter()
            .find_map(|name| libloading::Library::new(*name).ok())
            .ok_or_else(|| NO_DRIVER.to_string())?;
        let init: libloading::Symbol<unsafe extern "C" fn(u32) -> i32> = lib
            .get(b"cuInit\0")
            .map_err(|e| format!("libcuda has no cuInit: {e}"))?;
        let count_of: libloading::Symbol<unsafe extern "C" fn(*mut i32) -> i32> = lib
            .get(b"cuDeviceGetCount\0")
            .map_err(|e| format!("libcuda has no cuDeviceGetCount: {e}"))?;
        let code = init(0);
        if code != 0 {
            // 100 = CUDA_ERROR_NO_DEVICE, 35 = CUDA_ERROR_INSUFFICIENT_DRIVER
            return Err(format!(
                "the CUDA driver did not initialise (cuInit returned CUresult {code}; 100: no \
                 CUDA device, 35: driver too old)"
            ));
        }
        let mut count = 0i32;
        let code = count_of(&mut count);
        if code != 0 {
            return Err(format!("cuDeviceGetCount returned CUresult {code}"));
        }
        Ok(count.max(0) as usize)
    }
}

/// The autodiff device that wraps `device`: parameters being trained live here.
pub fn train_device(device: &Device) -> Device {
    match device {
        DispatchDevice::Autodiff(_) => device.clone(),
        other => DispatchDevice::autodiff(other.clone()),
    }
}

/// The plain device under an autodiff one (identity for a plain device).
pub fn inner_device(device: &Device) -> Device {
    match device {
        DispatchDevice::Autodiff(inner) => (**inner).clone(),
        other => other.clone(),
    }
}

/// Whether `device` (or the device under it) is a GPU.
pub fn is_gpu(device: &Device) -> bool {
    !matches!(
        inner_device(device),
        DispatchDevice::Flex(_) | DispatchDevice::NdArray(_)
    )
}

/// Forces every lazily initialised parameter of `module` to take its value now.
///
/// burn initialises parameters on first use, and a clone of a not-yet-initialised
/// parameter initialises separately (with other random numbers). Models are materialised
/// right after construction so that clones, records and snapshots all see the same weights.
pub fn materialize<M: burn::module::Module<B>>(module: M) -> M {
    struct Touch;
    impl burn::module::ModuleMapper<B> for Touch {
        fn map_float<const D: usize>(
            &mut self,
            param: burn::module::Param<burn::tensor::Tensor<B, D>>,
        ) -> burn::module::Param<burn::tensor::Tensor<B, D>> {
            let (id, tensor, mapper) = param.consume();
            burn::module::Param::from_mapped_value(id, tensor, mapper)
        }
    }
    module.map(&mut Touch)
}

/// Runs `init` with the backend's generator seeded by `seed`, holding a process-wide lock
/// so that concurrent runs (tests run in parallel threads) cannot interleave their draws:
/// the same seed always gives the same initial weights.
pub fn with_seed<T>(device: &Device, seed: u64, init: impl FnOnce() -> T) -> T {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    B::seed(device, seed);
    B::seed(&inner_device(device), seed);
    init()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CPU devices open as they parse; bad strings fail the same way. (The CUDA driver
    /// check needs the `cuda` feature, which CI does not build: checked by hand, see
    /// docs/benchmarks.md, session 9.)
    #[test]
    fn open_device_is_parse_device_for_cpus() {
        assert!(matches!(
            open_device(" cpu ").unwrap(),
            DispatchDevice::Flex(_)
        ));
        assert_eq!(
            open_device("gpu0").unwrap_err().to_string(),
            parse_device("gpu0").unwrap_err().to_string()
        );
    }

    #[test]
    fn the_kernel_cache_is_on_unless_switched_off() {
        assert!(kernel_cache_wanted(None));
        assert!(kernel_cache_wanted(Some("1")));
        for off in ["0", "false", " OFF "] {
            assert!(!kernel_cache_wanted(Some(off)), "{off}");
        }
    }

    /// With the `cuda` feature (not built by CI): the config cubecl will read has the
    /// kernel cache on, at the autotune cache's default place.
    #[cfg(feature = "cuda")]
    #[test]
    fn configuring_turns_cubecls_kernel_cache_on() {
        use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig, cache::CacheConfig};
        configure_kernel_cache();
        let config = CubeClRuntimeConfig::get();
        assert!(
            matches!(config.compilation.cache, Some(CacheConfig::Target)),
            "{:?}",
            config.compilation.cache
        );
    }

    #[test]
    fn cpu_is_flex_and_ndarray_is_selectable() {
        assert!(matches!(
            parse_device("cpu").unwrap(),
            DispatchDevice::Flex(_)
        ));
        assert!(matches!(
            parse_device("cpu-ndarray").unwrap(),
            DispatchDevice::NdArray(_)
        ));
    }

    #[test]
    fn bad_device_lists_the_valid_ones() {
        let err = parse_device("gpu0").unwrap_err().to_string();
        assert!(err.contains("unknown device `gpu0`"), "{err}");
        assert!(err.contains("cpu-ndarray"), "{err}");
    }

    #[test]
    fn train_device_wraps_once() {
        let d = parse_device("cpu").unwrap();
        let t = train_device(&d);
        assert!(matches!(t, DispatchDevice::Autodiff(_)));
        assert_eq!(train_device(&t), t);
        assert_eq!(inner_device(&t), d);
    }
}
