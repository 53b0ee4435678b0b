//! Hugging Face safetensors checkpoints in and out, through burn's store (`burn-store`).
//!
//! - Keys: `model.layers.N.self_attn.q_proj.weight` ↔ our module path
//!   `layers.N.self_attn.q_proj.base.weight` (the `base` is the frozen half of a LoRA
//!   layer); `lm_head.weight` stays as it is.
//! - Layout: PyTorch stores linear weights `[out, in]`, burn `[in, out]`; RMSNorm's
//!   `weight` is burn's `gamma`. burn-store's PyTorch adapters transpose linear weights;
//!   the key remapping renames the norms' parameter.
//! - Dtypes: f16 / bf16 / f64 tensors are cast to the model's dtype at load.
//! - Sharded checkpoints: `model.safetensors.index.json` names the shard of each key;
//!   every shard is applied in turn and a key missing from all of them is an error.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use burn::tensor::DType;
use burn::tensor::backend::Backend;
use burn_store::{
    BurnToPyTorchAdapter, KeyRemapper, ModuleAdapter, ModuleSnapshot, PyTorchToBurnAdapter,
    SafetensorsStore, TensorSnapshot,
};

use super::decoder::HfDecoder;

/// Casts every floating tensor to `dtype` while loading.
#[derive(Debug, Clone)]
struct CastAdapter(DType);

impl ModuleAdapter for CastAdapter {
    fn adapt(&self, snapshot: &TensorSnapshot) -> TensorSnapshot {
        let target = self.0;
        let floating = matches!(
            snapshot.dtype,
            DType::F64 | DType::F32 | DType::F16 | DType::BF16
        );
        if !floating || snapshot.dtype == target {
            return snapshot.clone();
        }
        let data = snapshot.clone_data_fn();
        TensorSnapshot::from_closure(
            std::rc::Rc::new(move || Ok(data()?.convert_dtype(target))),
            target,
            snapshot.shape.clone(),
            snapshot.path_stack.clone().unwrap_or_default(),
            snapshot.container_stack.clone().unwrap_or_default(),
            snapshot.tensor_id.unwrap_or_default(),
        )
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(self.clone())
    }
}

const PROJECTIONS: &str = "q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj";

/// Hugging Face key → module path.
fn hf_to_module() -> KeyRemapper {
    KeyRemapper::from_patterns(vec![
        (r"^model\.".to_string(), String::new()),
        (
            format!(r"\.({PROJECTIONS})\.(weight|bias)$"),
            ".$1.base.$2".to_string(),
        ),
        // burn-store's adapters rename LayerNorm's weight to gamma, not RmsNorm's
        (
            r"(layernorm|^norm)\.weight$".to_string(),
            "$1.gamma".to_string(),
        ),
    ])
    .expect("valid patterns")
}

/// Module path → Hugging Face key.
fn module_to_hf() -> KeyRemapper {
    KeyRemapper::from_patterns(vec![
        (
            r"^(embed_tokens|layers|norm)\.".to_string(),
            "model.$1.".to_string(),
        ),
        (r"\.base\.".to_string(), ".".to_string()),
        (r"\.gamma$".to_string(), ".weight".to_string()),
    ])
    .expect("valid patterns")
}

/// The safetensors files of a checkpoint directory: `model.safetensors`, or the shards
/// listed in `model.safetensors.index.json`.
pub fn checkpoint_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let text = std::fs::read_to_string(&index)
            .with_context(|| format!("reading {}", index.display()))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", index.display()))?;
        let map = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .with_context(|| format!("{} has no `weight_map`", index.display()))?;
        let files: BTreeSet<&str> = map.values().filter_map(|v| v.as_str()).collect();
        anyhow::ensure!(!files.is_empty(), "{} lists no shards", index.display());
        return Ok(files.into_iter().map(|f| dir.join(f)).collect());
    }
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    bail!(
        "{} has neither model.safetensors nor model.safetensors.index.json",
        dir.display()
    )
}

/// Loads every parameter of `model` from the checkpoint's safetensors files.
pub fn load_safetensors<B: Backend>(
    model: HfDecoder<B>,
    files: &[PathBuf],
) -> anyhow::Result<HfDecoder<B>> {
    let mut stores = files
        .iter()
        .map(|f| (f.display().to_string(), SafetensorsStore::from_file(f)))
        .collect::<Vec<_>>();
    apply_stores(model, &mut stores)
}

/// Loads every parameter of `model` from safetensors bytes held in memory.
pub fn load_safetensors_bytes<B: Backend>(
    model: HfDecoder<B>,
    bytes: Vec<u8>,
    origin: &str,
) -> anyhow::Result<HfDecoder<B>> {
    let mut stores = vec![(
        origin.to_string(),
        SafetensorsStore::from_bytes(Some(bytes)),
    )];
    apply_stores(model, &mut stores)
}

fn apply_stores<B: Backend>(
    mut model: HfDecoder<B>,
    stores: &mut [(String, SafetensorsStore)],
) -> anyhow::Result<HfDecoder<B>> {
    let mut missing: Option<BTreeMap<String, String>> = None;
    for (name, store) in stores.iter_mut() {
        let s = std::mem::replace(store, SafetensorsStore::from_bytes(None));
        let mut s = s
            .remap(hf_to_module())
            .with_from_adapter(PyTorchToBurnAdapter.chain(CastAdapter(DType::F32)))
            .allow_partial(true)
            // tied checkpoints may still carry lm_head.weight; rotary buffers are computed
            .validate(true);
        let result = model
            .load_from(&mut s)
            .map_err(|e| anyhow::anyhow!("loading {name}: {e}"))?;
        anyhow::ensure!(
            result.errors.is_empty(),
            "loading {name}: {:?}",
            result.errors
        );
        let here: BTreeMap<String, String> = result.missing.into_iter().collect();
        missing = Some(match missing {
            None => here,
            Some(m) => m
                .into_iter()
                .filter(|(k, _)| here.contains_key(k))
                .collect(),
        });
    }
    if let Some(m) = missing
        && !m.is_empty()
    {
        let names: Vec<String> = m.keys().take(8).map(|k| hf_name(k)).collect();
        bail!(
            "the checkpoint lacks {} tensor(s) the model needs, e.g. {}",
            m.len(),
            names.join(", ")
        );
    }
    Ok(model)
}

/// The Hugging Face key of a module path (`layers.0.self_attn.q_proj.base.weight` →
/// `model.layers.0.self_attn.q_proj.weight`; norms' `gamma` → `weight`).
pub fn hf_name(path: &str) -> String {
    let mut s = path.replace(".base.", ".");
    if s.ends_with(".gamma") {
        s = format!("{}.weight", &s[..s.len() - ".gamma".len()]);
    }
    if s.starts_with("embed_tokens.") || s.starts_with("layers.") || s.starts_with("norm.") {
        s = format!("model.{s}");
    }
    s
}

/// Writes the model's weights as one Hugging Face `model.safetensors` (f32). Adapters
/// must be merged first ([`HfDecoder::merged`]).
pub fn save_safetensors<B: Backend>(model: &HfDecoder<B>, path: &Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        !model.has_lora(),
        "merge LoRA adapters before writing a Hugging Face checkpoint"
    );
    let mut store = SafetensorsStore::from_file(path)
        .with_to_adapter(BurnToPyTorchAdapter)
        .remap(module_to_hf())
        .metadata("format", "pt")
        .overwrite(true);
    model
        .save_into(&mut store)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    Ok(())
}
