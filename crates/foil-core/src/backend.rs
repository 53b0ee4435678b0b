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
    if cfg!(feature = "vulkan") {
        v.push("vulkan");
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
        #[cfg(feature = "vulkan")]
        "vulkan" => Ok(DispatchDevice::Vulkan(
            burn::backend::wgpu::WgpuDevice::DefaultDevice,
        )),
        _ => Err(bad()),
    }
}

/// [`parse_device`] for a device about to be used: a CUDA device is also checked for the
/// NVIDIA driver library and for its index (`cuda:3` on a machine with two GPUs), either of
/// which burn-cuda would report by panicking on a worker thread at first use, and turns on
/// the kernel cache (`configure_kernel_cache`). (Recipe validation calls `parse_device`
/// alone, so a CUDA recipe can be checked on a machine without a GPU.)
pub fn open_device(s: &str) -> Result<Device, FoilError> {
    let device = parse_device(s)?;
    #[cfg(feature = "cuda")]
    if let DispatchDevice::Cuda(cuda) = &device {
        let unavailable = |why: String| FoilError::DeviceUnavailable {
            given: s.trim().to_string(),
            why,
        };
        let archs = cuda_devices()
            .as_ref()
            .map_err(|e| unavailable(e.clone()))?;
        if cuda.index >= archs.len() {
            return Err(unavailable(format!(
                "this machine has {} CUDA device(s): use cuda:0 .. cuda:{}",
                archs.len(),
                archs.len().saturating_sub(1)
            )));
        }
        configure_kernel_cache(archs);
    }
    Ok(device)
}

/// The compute capability (major, minor) of every CUDA device, in index order, as the
/// driver reports it (`cuInit`, `cuDeviceGetCount`, `cuDeviceGet`,
/// `cuDeviceGetAttribute`), or why it cannot: no driver library (under the names cudarc
/// looks for first), or a driver call that fails (no device, a driver older than the
/// toolkit). Asked once per process; the library stays loaded, as cudarc keeps it.
#[cfg(feature = "cuda")]
fn cuda_devices() -> &'static Result<Vec<(i32, i32)>, String> {
    static DEVICES: std::sync::OnceLock<Result<Vec<(i32, i32)>, String>> =
        std::sync::OnceLock::new();
    DEVICES.get_or_init(|| {
        const NO_DRIVER: &str = "the NVIDIA driver library (libcuda.so.1) does not load: no \
                                 NVIDIA driver on this machine, or its folder is missing from \
                                 LD_LIBRARY_PATH (e.g. /usr/local/nvidia/lib64)";
        // compute capability attributes of the driver API (`CUdevice_attribute`)
        const MAJOR: i32 = 75;
        const MINOR: i32 = 76;
        // SAFETY: loading the driver library runs its initialisers, as burn-cuda's own
        // loading would next; it is never unloaded (leaked), so the symbols stay valid, and
        // unloading an initialised driver is a known source of crashes. The entry points
        // have the driver API's C signatures: `CUresult cuInit(unsigned int)`,
        // `cuDeviceGetCount(int *)`, `cuDeviceGet(CUdevice *, int)`,
        // `cuDeviceGetAttribute(int *, CUdevice_attribute, CUdevice)`, with `CUresult`,
        // `CUdevice` and the attribute enum all C ints.
        unsafe {
            let lib: &'static libloading::Library = Box::leak(Box::new(
                ["libcuda.so.1", "libcuda.so", "nvcuda.dll"]
                    .iter()
                    .find_map(|name| libloading::Library::new(*name).ok())
                    .ok_or_else(|| NO_DRIVER.to_string())?,
            ));
            let symbol = |name: &str| format!("libcuda has no {name}");
            let init: libloading::Symbol<unsafe extern "C" fn(u32) -> i32> =
                lib.get(b"cuInit\0").map_err(|_| symbol("cuInit"))?;
            let count_of: libloading::Symbol<unsafe extern "C" fn(*mut i32) -> i32> = lib
                .get(b"cuDeviceGetCount\0")
                .map_err(|_| symbol("cuDeviceGetCount"))?;
            let device_at: libloading::Symbol<unsafe extern "C" fn(*mut i32, i32) -> i32> = lib
                .get(b"cuDeviceGet\0")
                .map_err(|_| symbol("cuDeviceGet"))?;
            let attribute: libloading::Symbol<unsafe extern "C" fn(*mut i32, i32, i32) -> i32> =
                lib.get(b"cuDeviceGetAttribute\0")
                    .map_err(|_| symbol("cuDeviceGetAttribute"))?;
            let check = |what: &str, code: i32| {
                if code == 0 {
                    Ok(())
                } else {
                    // 100 = CUDA_ERROR_NO_DEVICE, 35 = CUDA_ERROR_INSUFFICIENT_DRIVER
                    Err(format!(
                        "the CUDA driver call {what} returned CUresult {code} (100: no CUDA \
                         device, 35: driver too old)"
                    ))
                }
            };
            check("cuInit", init(0))?;
            let mut count = 0i32;
            check("cuDeviceGetCount", count_of(&mut count))?;
            (0..count.max(0))
                .map(|ordinal| {
                    let (mut device, mut major, mut minor) = (0i32, 0i32, 0i32);
                    check("cuDeviceGet", device_at(&mut device, ordinal))?;
                    check("cuDeviceGetAttribute", attribute(&mut major, MAJOR, device))?;
                    check("cuDeviceGetAttribute", attribute(&mut minor, MINOR, device))?;
                    Ok((major, minor))
                })
                .collect()
        }
    })
}

/// Turns on cubecl's on-disk cache of compiled kernels (PTX) before the first CUDA kernel,
/// unless a `cubecl.toml` / `burn.toml` already names a `[compilation] cache` or
/// `FOIL_KERNEL_CACHE=0` is set. `archs`: every device's compute capability.
///
/// Why: with fusion and autotune a CUDA process compiles hundreds of kernels with NVRTC
/// (every autotune candidate is compiled before it is timed); on an H200 the first train
/// step of the d 1024 GPT took 62 s in f32 and 150 s in bf16 at 0 % GPU use
/// (`docs/benchmarks.md`, session 10). cubecl keeps the autotune results on disk by
/// default but not the kernels; with the cache a second process loads the PTX instead of
/// compiling it.
///
/// Where: beside cubecl's default autotune cache (`target/` next to the nearest
/// `Cargo.toml`, else the user cache directory, `~/.cache/cubecl`), in a folder per GPU
/// architecture (`…/sm_90/`), because cubecl 0.10's cache key leaves the architecture out
/// while its PTX is compiled for one (`sm_90a`): a cache shared with another GPU model
/// would load PTX that does not fit. A machine whose GPUs differ in architecture gets no
/// cache, since one process has one cubecl config.
#[cfg(feature = "cuda")]
fn configure_kernel_cache(archs: &[(i32, i32)]) {
    use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig, cache::CacheConfig};
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // once cubecl has read its config it cannot change (`set` would panic), so the
        // check and the write happen under cubecl's own lock
        let mut stored = CubeClRuntimeConfig::storage().lock();
        if stored.is_some() {
            return;
        }
        let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
        if config.compilation.cache.is_none()
            && let Some(folder) =
                kernel_cache_folder(archs, std::env::var("FOIL_KERNEL_CACHE").ok().as_deref())
        {
            let root = CacheConfig::Target.root().join(folder);
            config.compilation.cache = Some(CacheConfig::File(root));
        }
        *stored = Some(std::sync::Arc::new(config));
    });
}

/// The kernel cache's folder for GPUs of compute capabilities `archs` (`sm_90`), or none:
/// no devices, devices of different architectures, or `FOIL_KERNEL_CACHE` (`setting`) set
/// to `0` / `false` / `off`.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
fn kernel_cache_folder(archs: &[(i32, i32)], setting: Option<&str>) -> Option<String> {
    let off = matches!(
        setting.map(|s| s.trim().to_ascii_lowercase()).as_deref(),
        Some("0" | "false" | "off")
    );
    let &(major, minor) = archs.first()?;
    (!off && archs.iter().all(|&a| a == (major, minor))).then(|| format!("sm_{major}{minor}"))
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

    /// CPU devices open as they parse; bad strings fail the same way. (The CUDA checks
    /// need the `cuda` feature, which CI does not build: checked by hand without a driver,
    /// and `cuda:7` on a one-GPU H200; docs/benchmarks.md, sessions 9 and 10.)
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
    fn the_kernel_cache_has_a_folder_per_architecture_unless_switched_off() {
        let h200s = [(9, 0), (9, 0)];
        assert_eq!(kernel_cache_folder(&h200s, None).as_deref(), Some("sm_90"));
        assert_eq!(
            kernel_cache_folder(&[(8, 6)], Some("1")).as_deref(),
            Some("sm_86")
        );
        for off in ["0", "false", " OFF "] {
            assert_eq!(kernel_cache_folder(&h200s, Some(off)), None, "{off}");
        }
        // an A100 beside an H100: one process, one config, no cache fits both
        assert_eq!(kernel_cache_folder(&[(9, 0), (8, 0)], None), None);
        assert_eq!(kernel_cache_folder(&[], None), None);
    }

    /// With the `cuda` feature (not built by CI; no other test here touches cubecl): the
    /// config cubecl will read has the kernel cache on, in a folder for the architecture
    /// (unless `FOIL_KERNEL_CACHE=0` or a cubecl.toml says otherwise).
    #[cfg(feature = "cuda")]
    #[test]
    fn configuring_turns_cubecls_kernel_cache_on() {
        use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig, cache::CacheConfig};
        configure_kernel_cache(&[(9, 0), (9, 0)]);
        let config = CubeClRuntimeConfig::get();
        match &config.compilation.cache {
            Some(CacheConfig::File(path)) => assert!(path.ends_with("sm_90"), "{path:?}"),
            other => panic!("{other:?}"),
        }
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
