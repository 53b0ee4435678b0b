//! The reward model itself: a `tiny_gpt` backbone with a scalar head, read at the last
//! token (outcome model) or at the last token of every step (process model).
//!
//! ```text
//! h      = LN_f(h_L)            final hidden states of the tiny_gpt backbone, [n, t, d]
//! s_t    = w · h_t + b          one scalar per position (the value head)
//! r(x,y) = s at the last token of  prompt ⧺ response ⧺ <eos>              (outcome)
//! r_j    = s at the last token of step j (the separator that ends it)     (process)
//! ```
//!
//! "A linear head on the last hidden state" is the reward model of Ouyang et al. (2022) and
//! ARMAP (methods.md §18) [paper/code]; reading it at step ends is the PRM of Lightman et
//! al. (2023) [paper]. Rows are left-padded, so every row's last token is the last column;
//! sequences longer than the backbone's context keep their last `context` tokens [recon].
//!
//! A saved reward model is a directory: `model` and `optimizer` (burn records, as policies
//! write them) and `reward_model.json` ([`RewardModelMeta`]: backbone, kind, step
//! separator, and the run's `task`/`policy` sections so the tokenizer can be rebuilt).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use burn::module::{AutodiffModule, Module};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use foil_core::backend::{B as FB, Device, inner_device, materialize, train_device, with_seed};
use foil_core::batch::SeqBatch;
use foil_core::policy::OptimizerConfig;
use foil_core::{PolicyConfig, Task, Tokenizer};
use foil_models::trainable::{self, Adam};
use foil_models::{TinyGpt, TinyGptModel};
use serde::{Deserialize, Serialize};

/// What the model scores.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum RmKind {
    /// One score per response (Bradley–Terry or pointwise training).
    #[default]
    Outcome,
    /// One score per written step (process reward model).
    Process,
}

/// `reward_model.json`: everything needed to rebuild and use a saved reward model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RewardModelMeta {
    pub kind: RmKind,
    /// The backbone's shape (its `init_seed` is irrelevant once weights are loaded).
    pub backbone: TinyGpt,
    pub vocab_size: usize,
    /// Separates written steps (process models).
    pub separator: String,
    /// The piece that starts with this is the answer, not a step.
    pub marker: String,
    /// The training run's `task:` section, to rebuild its tokenizer.
    pub task: serde_json::Value,
    /// The training run's `policy:` section (a model that brings its own tokenizer).
    pub policy: serde_json::Value,
    /// The training run's seed (the task is built with it).
    pub seed: u64,
    /// Optimizer steps the weights have had.
    pub trained_steps: usize,
    /// VerifyRM input (`verify_rm.rs`): the scored prompt is this template with
    /// `{prompt}` and `{reference}` (the problem's reference answer) filled in; `None`:
    /// the problem's prompt alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// File name of [`RewardModelMeta`] inside a reward-model directory.
pub const META: &str = "reward_model.json";

/// The scorer network.
#[derive(Module, Debug)]
pub struct ScorerModel<B: Backend> {
    backbone: TinyGptModel<B>,
    value: Linear<B>,
}

/// One encoded response: tokens of `prompt ⧺ response ⧺ <eos>` and where to read scores.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub tokens: Vec<u32>,
    /// Positions (into `tokens`) whose score is read: the last token (outcome) or each
    /// step's last token (process).
    pub readout: Vec<usize>,
}

/// End offsets (bytes, exclusive) of each written step of `response`: the pieces of the
/// response split on `separator` before the first piece that starts with `marker`; a
/// piece's end includes the separator that follows it, so its score sees the whole step.
pub fn step_ends(response: &str, separator: &str, marker: &str) -> Vec<usize> {
    let mut ends = Vec::new();
    if separator.is_empty() {
        return ends;
    }
    let mut start = 0;
    for piece in response.split(separator) {
        if !marker.is_empty() && piece.starts_with(marker) {
            break;
        }
        let end = start + piece.len();
        let with_sep = if end < response.len() {
            end + separator.len()
        } else {
            end
        };
        ends.push(with_sep);
        start = with_sep;
    }
    ends
}

impl RewardModelMeta {
    /// Encodes `prompt ⧺ response ⧺ <eos>` with its readout positions, keeping the last
    /// `context` tokens (readouts that fall off are dropped).
    pub fn encode(
        &self,
        tok: &dyn Tokenizer,
        prompt: &str,
        response: &str,
    ) -> anyhow::Result<Encoded> {
        let mut tokens = tok.encode_prompt(prompt)?;
        let p = tokens.len();
        tokens.extend(tok.encode(response)?);
        tokens.push(tok.eos_id());
        let readout: Vec<usize> = match self.kind {
            RmKind::Outcome => vec![tokens.len() - 1],
            RmKind::Process => step_ends(response, &self.separator, &self.marker)
                .into_iter()
                .map(|end| Ok((p + tok.encode(&response[..end])?.len()).max(1) - 1))
                .collect::<anyhow::Result<_>>()?,
        };
        let context = self.backbone.context;
        if tokens.len() <= context {
            return Ok(Encoded { tokens, readout });
        }
        let cut = tokens.len() - context;
        Ok(Encoded {
            tokens: tokens[cut..].to_vec(),
            readout: readout
                .into_iter()
                .filter(|&r| r >= cut)
                .map(|r| r - cut)
                .collect(),
        })
    }

    /// The text scored as the prompt of `problem`: its prompt, or with a `reference`
    /// template the VerifyRM input (`verify_rm.rs`).
    pub fn prompt_of(&self, problem: &foil_core::Problem) -> String {
        match &self.reference {
            Some(t) => crate::verify_rm::input_prompt(t, problem),
            None => problem.prompt.clone(),
        }
    }

    /// Rebuilds the training run's tokenizer: the task's, or the policy's own.
    pub fn tokenizer(&self) -> anyhow::Result<Arc<dyn Tokenizer>> {
        let policy: Box<dyn PolicyConfig> = serde_json::from_value(self.policy.clone())
            .context("reading the `policy` section (is the crate that registers it linked?)")?;
        if let Some(t) = policy.tokenizer()? {
            return Ok(t);
        }
        let task: Box<dyn Task> = serde_json::from_value(self.task.clone())
            .context("reading the `task` section (is the crate that registers it linked?)")?;
        Ok(task
            .build(self.seed)
            .context("rebuilding the task for its tokenizer")?
            .tokenizer)
    }
}

/// A batch of encoded responses, left-padded, with `s` readout slots per row.
#[derive(Debug, Clone)]
pub struct ScoreBatch {
    pub seqs: SeqBatch,
    /// `[n, s]` column indices into the padded rows.
    pub readout: Vec<i64>,
    /// `[n, s]`: 1 for real readouts, 0 for padding slots.
    pub mask: Vec<f32>,
    pub s: usize,
}

impl ScoreBatch {
    pub fn new(rows: &[&Encoded], pad: u32) -> Self {
        let tokens: Vec<Vec<u32>> = rows.iter().map(|r| r.tokens.clone()).collect();
        let seqs = SeqBatch::left_padded(&tokens, pad);
        let s = rows
            .iter()
            .map(|r| r.readout.len())
            .max()
            .unwrap_or(0)
            .max(1);
        let mut readout = vec![(seqs.t.max(1) - 1) as i64; rows.len() * s];
        let mut mask = vec![0.0; rows.len() * s];
        for (i, r) in rows.iter().enumerate() {
            let offset = seqs.t - r.tokens.len();
            for (j, &k) in r.readout.iter().enumerate() {
                readout[i * s + j] = (offset + k) as i64;
                mask[i * s + j] = 1.0;
            }
        }
        Self {
            seqs,
            readout,
            mask,
            s,
        }
    }
}

impl ScorerModel<FB> {
    /// Fresh weights for `backbone` over `vocab` ids.
    pub fn init(backbone: &TinyGpt, vocab: usize, device: &Device, seed: u64) -> Self {
        let init = foil_core::rng::derive(seed, &[0x5e3d, backbone.init_seed]);
        with_seed(device, init, || {
            materialize(ScorerModel {
                backbone: backbone.init_model(vocab, device),
                value: LinearConfig::new(backbone.d_model, 1).init(device),
            })
        })
    }

    /// Replaces the backbone with the weights of a `tiny_gpt` policy saved in `dir` (its
    /// `model` record, as [`foil_models::trainable::save`] writes it): the reward model
    /// starts from the SFT policy, as in Ouyang et al. (2022) [paper].
    pub fn with_backbone_from(self, dir: &Path, device: &Device) -> anyhow::Result<Self> {
        use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder};
        let rec = BinFileRecorder::<FullPrecisionSettings>::new();
        let record = Recorder::<FB>::load(&rec, dir.join("model"), device).with_context(|| {
            format!(
                "reading tiny_gpt weights from {} (init: policy needs a tiny_gpt policy \
                 of the same shape as the reward model)",
                dir.display()
            )
        })?;
        Ok(ScorerModel {
            backbone: self.backbone.load_record(record),
            value: self.value,
        })
    }

    /// Scores `[n, s]` at the batch's readout slots (padding slots hold the last column's).
    pub fn scores(&self, batch: &ScoreBatch, device: &Device) -> Tensor<FB, 2> {
        let input = batch.seqs.to_input(device);
        let h = self
            .backbone
            .hidden(input.tokens, input.positions, input.key_valid);
        let [n, t, _] = h.dims();
        let all = trainable::linear_rows(&self.value, h).reshape([n, t]);
        let idx = Tensor::<FB, 2, Int>::from_data(
            TensorData::new(batch.readout.clone(), [n, batch.s]),
            device,
        );
        all.gather(1, idx)
    }
}

/// A reward model being trained: weights on the autodiff device and their AdamW state.
pub struct TrainableScorer {
    model: Option<ScorerModel<FB>>,
    optim: Adam<ScorerModel<FB>>,
    /// Training (autodiff) device.
    pub device: Device,
    pub meta: RewardModelMeta,
}

impl TrainableScorer {
    /// Fresh weights on the autodiff wrapper of `device`.
    pub fn new(
        meta: RewardModelMeta,
        device: &Device,
        seed: u64,
        optimizer: &OptimizerConfig,
    ) -> Self {
        let train = train_device(device);
        let model = ScorerModel::init(&meta.backbone, meta.vocab_size, &train, seed);
        Self {
            model: Some(model),
            optim: trainable::adamw(optimizer),
            device: train,
            meta,
        }
    }

    /// Starts the backbone from the `tiny_gpt` weights saved in `dir`.
    pub fn init_backbone_from(&mut self, dir: &Path) -> anyhow::Result<()> {
        let model = self.model.take().expect("model present between steps");
        self.model = Some(model.with_backbone_from(dir, &self.device)?);
        Ok(())
    }

    pub fn model(&self) -> &ScorerModel<FB> {
        self.model.as_ref().expect("model present between steps")
    }

    /// Scores with the autodiff graph.
    pub fn scores(&self, batch: &ScoreBatch) -> Tensor<FB, 2> {
        self.model().scores(batch, &self.device)
    }

    /// One AdamW step on `loss`.
    pub fn step(&mut self, loss: Tensor<FB, 1>, lr: f64) {
        let model = self.model.take().expect("model present between steps");
        self.model = Some(trainable::step(model, &mut self.optim, loss, lr));
        self.meta.trained_steps += 1;
    }

    /// A gradient-free copy on the inner device.
    pub fn inference(&self) -> ScorerModel<FB> {
        self.model().valid()
    }

    /// Writes weights, optimizer state and `reward_model.json` into `dir` through a
    /// temporary sibling that is renamed into place (a crash leaves the old one intact).
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let tmp = tmp_sibling(dir);
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        trainable::save(self.model(), &self.optim, &tmp, "reward model")?;
        std::fs::write(tmp.join(META), serde_json::to_string_pretty(&self.meta)?)?;
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("replacing {}", dir.display()))?;
        }
        std::fs::rename(&tmp, dir)
            .with_context(|| format!("moving the reward model into {}", dir.display()))?;
        Ok(())
    }

    /// Reads a directory written by [`TrainableScorer::save`]; errors name it.
    pub fn load(dir: &Path, device: &Device, optimizer: &OptimizerConfig) -> anyhow::Result<Self> {
        let meta = read_meta(dir)?;
        let Self {
            model,
            optim,
            device: train,
            ..
        } = Self::new(meta.clone(), device, 0, optimizer);
        let (model, optim) = trainable::load(
            model.expect("fresh model"),
            optim,
            dir,
            &train,
            "reward model",
        )
        .with_context(|| format!("loading the reward model in {}", dir.display()))?;
        Ok(Self {
            model: Some(model),
            optim,
            device: train,
            meta,
        })
    }
}

fn tmp_sibling(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.with_file_name(format!(".{name}.tmp"))
}

/// Reads `reward_model.json` from `dir`, saying which path is wrong when it fails.
pub fn read_meta(dir: &Path) -> anyhow::Result<RewardModelMeta> {
    let path = dir.join(META);
    if !dir.is_dir() {
        anyhow::bail!(
            "no reward model at {}: the directory does not exist",
            dir.display()
        );
    }
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "no reward model at {}: cannot read {} (is it a reward_model stage's output?)",
            dir.display(),
            path.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a valid {META}", path.display()))
}

/// A saved reward model ready to score text, on the inner device.
pub struct LoadedRewardModel {
    pub model: ScorerModel<FB>,
    pub meta: RewardModelMeta,
    pub tokenizer: Arc<dyn Tokenizer>,
    pub device: Device,
}

impl std::fmt::Debug for LoadedRewardModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedRewardModel")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

impl LoadedRewardModel {
    /// Loads the reward model saved in `dir` onto `device` (errors name `dir`).
    pub fn load(dir: &Path, device: &Device) -> anyhow::Result<Self> {
        let trained = TrainableScorer::load(dir, device, &OptimizerConfig::adamw(1e-3))?;
        let tokenizer = trained.meta.tokenizer().with_context(|| {
            format!(
                "rebuilding the tokenizer of the reward model in {}",
                dir.display()
            )
        })?;
        anyhow::ensure!(
            tokenizer.vocab_size() == trained.meta.vocab_size,
            "the reward model in {} was trained on {} token ids but its task's tokenizer now has {}",
            dir.display(),
            trained.meta.vocab_size,
            tokenizer.vocab_size()
        );
        Ok(Self {
            model: trained.inference(),
            meta: trained.meta,
            tokenizer,
            device: inner_device(device),
        })
    }

    /// Raw scores of each `(prompt, response)`: one per readout (one for outcome models,
    /// one per step for process models), in `chunk`-row batches.
    pub fn score_texts(&self, items: &[(&str, &str)]) -> anyhow::Result<Vec<Vec<f32>>> {
        let encoded: Vec<Encoded> = items
            .iter()
            .map(|(p, r)| self.meta.encode(self.tokenizer.as_ref(), p, r))
            .collect::<anyhow::Result<_>>()?;
        score_encoded(&self.model, &encoded, self.tokenizer.pad_id(), &self.device)
    }
}

/// Scores of encoded rows (no graph), `chunk` rows at a time.
pub fn score_encoded(
    model: &ScorerModel<FB>,
    encoded: &[Encoded],
    pad: u32,
    device: &Device,
) -> anyhow::Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(encoded.len());
    for chunk in encoded.chunks(64) {
        let rows: Vec<&Encoded> = chunk.iter().collect();
        let batch = ScoreBatch::new(&rows, pad);
        let s = foil_core::batch::to_vec(model.scores(&batch, device));
        for (i, e) in chunk.iter().enumerate() {
            out.push(s[i * batch.s..i * batch.s + e.readout.len()].to_vec());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bradley_terry::BradleyTerry;
    use foil_core::backend::parse_device;

    #[derive(Debug)]
    struct Digits;
    impl Tokenizer for Digits {
        fn vocab_size(&self) -> usize {
            14
        }
        fn encode(&self, text: &str) -> anyhow::Result<Vec<u32>> {
            Ok(text.bytes().map(|b| (b % 12) as u32 + 2).collect())
        }
        fn decode(&self, _: &[u32]) -> String {
            String::new()
        }
        fn eos_id(&self) -> u32 {
            1
        }
        fn pad_id(&self) -> u32 {
            0
        }
    }

    fn meta(kind: RmKind) -> RewardModelMeta {
        RewardModelMeta {
            kind,
            backbone: TinyGpt {
                d_model: 16,
                layers: 1,
                heads: 2,
                context: 16,
                mlp_ratio: 2,
                init_seed: 0,
                precision: Default::default(),
            },
            vocab_size: 14,
            separator: "|".into(),
            marker: "A:".into(),
            task: serde_json::Value::Null,
            policy: serde_json::Value::Null,
            seed: 0,
            trained_steps: 0,
            reference: None,
        }
    }

    #[test]
    fn step_ends_follow_the_steps_verifier_split() {
        // "1+2=3|3+4=7|A:7": pieces "1+2=3", "3+4=7", then the answer → ends after each "|"
        assert_eq!(step_ends("1+2=3|3+4=7|A:7", "|", "A:"), vec![6, 12]);
        // no answer marker, no trailing separator: the last piece ends the text
        assert_eq!(step_ends("1+2=3|3+4", "|", "A:"), vec![6, 9]);
        assert_eq!(step_ends("A:7", "|", "A:"), Vec::<usize>::new());
    }

    #[test]
    fn readouts_sit_on_the_eos_or_on_step_separators() {
        let m = meta(RmKind::Process);
        // prompt 2 tokens, response "12|34|A:5" (9 tokens), eos → 12 tokens
        let e = m.encode(&Digits, "Q=", "12|34|A:5").unwrap();
        assert_eq!(e.tokens.len(), 12);
        // step 1 ends with the "|" at response offset 2 → token 2 + 2 = 4; step 2 at 2 + 5 = 7
        assert_eq!(e.readout, vec![4, 7]);
        let o = meta(RmKind::Outcome)
            .encode(&Digits, "Q=", "12|34|A:5")
            .unwrap();
        assert_eq!(o.readout, vec![11]);
        // longer than the context (16): the first tokens are dropped, readouts shift
        let long = m.encode(&Digits, "Q=", "1234567|89|A:5").unwrap();
        assert_eq!(long.tokens.len(), 16); // 2 + 14 + 1 = 17 → drop 1
        assert_eq!(long.readout, vec![8, 11]); // (2+8−1, 2+11−1) − 1 = (9, 12) − 1
    }

    #[test]
    fn bradley_terry_separates_a_learnable_preference_and_survives_save_load() {
        // chosen responses end in "7", rejected ones in "3": a pattern a tiny model learns
        let device = parse_device("cpu").unwrap();
        let opt = OptimizerConfig::adamw(1e-2);
        let mut s = TrainableScorer::new(meta(RmKind::Outcome), &device, 0, &opt);
        let enc = |r: &str| meta(RmKind::Outcome).encode(&Digits, "Q=", r).unwrap();
        let chosen: Vec<Encoded> = (0..8).map(|i| enc(&format!("{i}{i}7"))).collect();
        let rejected: Vec<Encoded> = (0..8).map(|i| enc(&format!("{i}{i}3"))).collect();
        let rows: Vec<&Encoded> = chosen.iter().chain(&rejected).collect();
        let batch = ScoreBatch::new(&rows, 0);
        for _ in 0..40 {
            let sc = s.scores(&batch).reshape([16]);
            let loss = BradleyTerry::default().loss(sc.clone().slice(0..8), sc.slice(8..16));
            s.step(loss, 1e-2);
        }
        let inner = inner_device(&device);
        let out = score_encoded(
            &s.inference(),
            &rows.iter().map(|e| (*e).clone()).collect::<Vec<_>>(),
            0,
            &inner,
        )
        .unwrap();
        for i in 0..8 {
            assert!(
                out[i][0] > out[8 + i][0],
                "pair {i}: {} vs {}",
                out[i][0],
                out[8 + i][0]
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rm");
        s.save(&path).unwrap();
        let back = TrainableScorer::load(&path, &device, &opt).unwrap();
        assert_eq!(back.meta.trained_steps, 40);
        let again = score_encoded(
            &back.inference(),
            &rows.iter().map(|e| (*e).clone()).collect::<Vec<_>>(),
            0,
            &inner,
        )
        .unwrap();
        assert_eq!(out, again);
        let e = format!(
            "{:#}",
            TrainableScorer::load(&dir.path().join("none"), &device, &opt)
                .err()
                .unwrap()
        );
        assert!(e.contains("none") && e.contains("does not exist"), "{e}");
    }
}
