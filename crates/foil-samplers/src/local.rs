//! `local`: batched autoregressive sampling in-process with a KV cache.
//!
//! Each problem's prompt is repeated `n` times; rows are left-padded, prefilled once, then
//! decoded one token per step. A row stops at EOS, at a stop string, or after
//! `max_tokens` (or when the model's context is full). Each token is drawn from the
//! processed distribution of [`crate::distribution`] (the padding id is never drawn); its log-probability under that
//! distribution is recorded as the behaviour log-prob. Rollouts use the gradient-free
//! [`InferenceModel`], so no autodiff graph is built. The random stream is the `seed`
//! argument: same seed, same completions. A step's rows are processed in parallel
//! (rayon); their uniforms are drawn first, one per live row in row order, so the
//! completions do not depend on the number of threads.
//!
//! `logit_processors` (e.g. GUARD's, `crate::guard`) are asked once per prompt
//! ([`LogitProcessor::begin`]) and then rewrite each row's raw logits, in list order, after
//! padding is masked and before temperature and truncation; the recorded log-prob is that
//! of the processed distribution actually sampled from, the recorded entropy that of the
//! model's own logits. With an empty list nothing is copied or asked.

use std::ops::Range;
use std::sync::Arc;

use burn::tensor::{Tensor, TensorData};
use foil_core::backend::B;
use foil_core::batch::{SeqBatch, shard_rows, to_vec};
use foil_core::policy::{DecodeCache, InferenceModel};
use foil_core::{
    Completion, Finish, Group, LogitProcessor, Problem, PromptProcessor, Sampler, Tokenizer,
    register_part,
};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::distribution::{Truncation, entropy, sample_token};

/// Recipe part: `sampler: {type: local, n: 8, temperature: 1.0, max_tokens: 48}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Local {
    /// Completions per prompt.
    pub n: usize,
    /// Softmax temperature; 0 = greedy.
    pub temperature: f32,
    /// Keep the k most likely tokens (0 = off).
    pub top_k: usize,
    /// Nucleus mass (1.0 = off).
    pub top_p: f32,
    /// Keep tokens with p ≥ min_p · p_max (0 = off).
    pub min_p: f32,
    /// Longest completion, in tokens (EOS included).
    pub max_tokens: usize,
    /// Stop when the completion text ends with one of these (kept in the text).
    pub stop: Vec<String>,
    /// Rows decoded together (memory bound); 0 = all at once.
    pub batch_rows: usize,
    /// On a CPU device, the rows of a batch are split into this many groups, each
    /// prefilled and decoded with its own KV cache, side by side on rayon's threads (at
    /// most one group per thread at a time); 0 = one per core
    /// (`std::thread::available_parallelism`), 1 = one group. flex runs the small
    /// per-token ops of a decode step on one core, so groups on two cores decode ~2×
    /// as fast. A group whose rows have all finished stops decoding. GPU devices
    /// always decode one group. Same seed and same `threads` → same completions; a
    /// different split can change logits in the last float bits. (The per-row work of
    /// each step, entropy and drawing, runs on rayon's pool whatever this is.)
    pub threads: usize,
    /// Decoding-time logits processors (`[{type: guard, …}]`), applied in order.
    pub logit_processors: LogitProcessors,
}

/// A list of [`LogitProcessor`]s, shared (cloning a sampler shares its processors).
/// Two lists are equal when they serialise alike.
#[derive(Debug, Clone, Default)]
pub struct LogitProcessors(pub Arc<Vec<Box<dyn LogitProcessor>>>);

impl LogitProcessors {
    pub fn new(list: Vec<Box<dyn LogitProcessor>>) -> Self {
        Self(Arc::new(list))
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl PartialEq for LogitProcessors {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || serde_json::to_value(&*self.0).ok() == serde_json::to_value(&*other.0).ok()
    }
}

impl Serialize for LogitProcessors {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.as_ref().serialize(s)
    }
}

impl<'de> Deserialize<'de> for LogitProcessors {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<Box<dyn LogitProcessor>>::deserialize(d).map(Self::new)
    }
}

/// Logits per rayon task when a step's rows are processed in parallel (a row of a large
/// vocabulary is a task of its own; rows of a small one are grouped).
const LOGITS_PER_TASK: usize = 1 << 15;

/// One prompt row's processors (empty when none applies to its prompt).
type RowProcessors = Vec<Arc<dyn PromptProcessor>>;

impl Default for Local {
    fn default() -> Self {
        Self {
            n: 8,
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            max_tokens: 48,
            stop: Vec::new(),
            batch_rows: 512,
            threads: 0,
            logit_processors: LogitProcessors::default(),
        }
    }
}

register_part!(
    Sampler,
    "local",
    Local,
    "batched in-process generation with KV cache: n, temperature, top-k/top-p/min-p, stop strings, logit processors, seeded"
);

impl Local {
    fn truncation(&self) -> Truncation {
        Truncation {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
        }
    }

    /// How many row groups decode side by side on `device` (see [`Local::threads`]).
    fn groups(&self, rows: usize, device: &foil_core::backend::Device) -> usize {
        if foil_core::backend::is_gpu(device) {
            return 1;
        }
        let want = match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            t => t,
        };
        want.clamp(1, rows.max(1))
    }

    /// Generates one completion per prompt row.
    fn generate_rows(
        &self,
        model: &dyn InferenceModel,
        tokenizer: &dyn Tokenizer,
        prompts: &[Vec<u32>],
        procs: &[RowProcessors],
        rng: &mut rand_chacha::ChaCha8Rng,
    ) -> anyhow::Result<Vec<Completion>> {
        let device = model.device();
        let rows = prompts.len();
        let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
        anyhow::ensure!(
            longest < model.context(),
            "a prompt of {longest} tokens does not fit the policy's context of {}",
            model.context()
        );
        let budget = self.max_tokens.min(model.context() - longest);
        let pad_id = tokenizer.pad_id();
        let groups = split_rows(rows, self.groups(rows, &device));
        // each group: the logits of its last column (taken each step) and its KV cache;
        // a prompt repeated on consecutive rows (its `n` completions) is prefilled once
        let mut state: Vec<(Option<Tensor<B, 2>>, DecodeCache)> = on_threads(groups.clone(), |r| {
            let (distinct, repeats) = runs(&prompts[r.clone()]);
            let input = SeqBatch::left_padded(&distinct, pad_id).to_input(&device);
            let (logits, cache) = if distinct.len() == r.len() {
                model.prefill(&input)
            } else {
                model.prefill_repeated(&input, &repeats)
            };
            (Some(logits), cache)
        });
        let v = state[0].0.as_ref().map_or(0, |l| l.dims()[1]);
        let trunc = self.truncation();
        let mut out: Vec<Completion> = (0..rows)
            .map(|_| Completion {
                tokens: Vec::new(),
                text: String::new(),
                logprobs: Vec::new(),
                entropies: Vec::new(),
                finish: Finish::Length,
            })
            .collect();
        let mut done = vec![false; rows];
        for step in 0..budget {
            // a finished group decodes no more: its rows stay zero and are never read
            let mut host = if let [(logits, _)] = state.as_mut_slice() {
                logits.take().map_or_else(|| vec![0f32; rows * v], to_vec)
            } else {
                let mut host = vec![0f32; rows * v];
                for (g, r) in state.iter_mut().zip(&groups) {
                    if let Some(logits) = g.0.take() {
                        host[r.start * v..r.end * v].copy_from_slice(&to_vec(logits));
                    }
                }
                host
            };
            // padding is never an output (unless it doubles as end-of-sequence)
            if !tokenizer.is_eos(pad_id) && (pad_id as usize) < v {
                for r in 0..rows {
                    host[r * v + pad_id as usize] = f32::NEG_INFINITY;
                }
            }
            // one uniform per live row, drawn in row order: the stream does not depend on
            // how the rows are spread over threads below
            let uniforms: Vec<f32> = done
                .iter()
                .map(|&d| if d { 0.0 } else { rng.random() })
                .collect();
            let mut next = vec![pad_id as i64; rows];
            // each row on its own: entropy, processors, distribution, draw, end checks
            host.par_chunks_mut(v)
                .zip(out.par_iter_mut())
                .zip(done.par_iter_mut())
                .zip(next.par_iter_mut())
                .zip(uniforms.par_iter())
                .enumerate()
                .with_min_len(LOGITS_PER_TASK.div_ceil(v.max(1)))
                .map_init(Vec::new, |scratch, (r, ((((row, c), done), next), &u))| {
                    if *done {
                        return Ok(());
                    }
                    let h = entropy(row);
                    let list = procs.get(r).filter(|l| !l.is_empty());
                    for proc in list.into_iter().flatten() {
                        proc.process(&c.tokens, row);
                    }
                    // `None` exactly when no logit is finite or +∞
                    let Some((tok, logprob)) = sample_token(row, &trunc, u, scratch) else {
                        match list {
                            Some(_) => anyhow::bail!(
                                "local sampler: the logit processors removed every token of row {r}"
                            ),
                            None => anyhow::bail!(
                                "local sampler: no token of row {r} can be drawn (every logit is −∞ or NaN)"
                            ),
                        }
                    };
                    c.tokens.push(tok as u32);
                    c.logprobs.push(logprob);
                    c.entropies.push(h);
                    *next = tok as i64;
                    if tokenizer.is_eos(tok as u32) {
                        c.finish = Finish::Eos;
                        *done = true;
                    } else if !self.stop.is_empty() {
                        let text = tokenizer.decode(&c.tokens);
                        if self.stop.iter().any(|s| text.ends_with(s.as_str())) {
                            c.finish = Finish::Stop;
                            *done = true;
                        }
                    }
                    Ok(())
                })
                // the first failing row in row order, whatever the threads' timing
                .collect::<Vec<anyhow::Result<()>>>()
                .into_iter()
                .collect::<anyhow::Result<()>>()?;
            if done.iter().all(|&d| d) || step + 1 == budget {
                break;
            }
            let positions: Vec<i64> = prompts.iter().map(|p| (p.len() + step) as i64).collect();
            let live: Vec<_> = state
                .iter_mut()
                .zip(&groups)
                .filter(|(_, r)| (r.start..r.end).any(|i| !done[i]))
                .collect();
            on_threads(live, |((logits, cache), r)| {
                let n = r.len();
                *logits = Some(model.decode(
                    cache,
                    Tensor::from_data(TensorData::new(next[r.clone()].to_vec(), [n, 1]), &device),
                    Tensor::from_data(
                        TensorData::new(positions[r.clone()].to_vec(), [n, 1]),
                        &device,
                    ),
                ));
            });
        }
        for c in &mut out {
            c.text = tokenizer.decode(&c.tokens);
        }
        Ok(out)
    }
}

/// `prompts` as runs of equal consecutive prompts: each run's prompt and length.
fn runs(prompts: &[Vec<u32>]) -> (Vec<Vec<u32>>, Vec<usize>) {
    let (mut distinct, mut repeats): (Vec<Vec<u32>>, Vec<usize>) = (Vec::new(), Vec::new());
    for p in prompts {
        match (distinct.last(), repeats.last_mut()) {
            (Some(last), Some(n)) if last == p => *n += 1,
            _ => {
                distinct.push(p.clone());
                repeats.push(1);
            }
        }
    }
    (distinct, repeats)
}

/// `rows` split into `parts` contiguous groups ([`shard_rows`]), never more groups than
/// rows and always at least one.
fn split_rows(rows: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.clamp(1, rows.max(1));
    (0..parts).map(|i| shard_rows(rows, parts, i)).collect()
}

/// `f` on each item, side by side on rayon's threads when there are several; results in
/// item order.
fn on_threads<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    if items.len() <= 1 {
        return items.into_iter().map(f).collect();
    }
    items.into_par_iter().with_max_len(1).map(&f).collect()
}

#[typetag::serde(name = "local")]
impl Sampler for Local {
    fn sample(
        &self,
        model: &dyn InferenceModel,
        tokenizer: &dyn Tokenizer,
        problems: &[Problem],
        seed: u64,
    ) -> anyhow::Result<Vec<Group>> {
        anyhow::ensure!(self.n > 0, "local sampler: n must be at least 1");
        anyhow::ensure!(
            self.max_tokens > 0,
            "local sampler: max_tokens must be at least 1"
        );
        self.truncation().check("local sampler")?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut prompts = Vec::with_capacity(problems.len() * self.n);
        let mut procs: Vec<RowProcessors> = Vec::new();
        for proc in self.logit_processors.0.iter() {
            proc.prepare()?;
        }
        for p in problems {
            let ids = tokenizer.encode_prompt(&p.prompt)?;
            anyhow::ensure!(!ids.is_empty(), "problem {} has an empty prompt", p.id);
            prompts.extend(std::iter::repeat_n(ids, self.n));
            if !self.logit_processors.is_empty() {
                let mut list = Vec::new();
                for proc in self.logit_processors.0.iter() {
                    list.extend(proc.begin(&p.prompt, tokenizer)?);
                }
                procs.extend(std::iter::repeat_n(list, self.n));
            }
        }
        let chunk = if self.batch_rows == 0 {
            prompts.len().max(1)
        } else {
            self.batch_rows
        };
        let mut completions = Vec::with_capacity(prompts.len());
        for (i, rows) in prompts.chunks(chunk).enumerate() {
            let lo = (i * chunk).min(procs.len());
            let hi = ((i + 1) * chunk).min(procs.len());
            completions.extend(self.generate_rows(
                model,
                tokenizer,
                rows,
                &procs[lo..hi],
                &mut rng,
            )?);
        }
        let mut it = completions.into_iter();
        Ok(problems
            .iter()
            .map(|p| Group {
                problem: p.clone(),
                completions: it.by_ref().take(self.n).collect(),
            })
            .collect())
    }

    fn n(&self) -> usize {
        self.n
    }

    fn max_tokens(&self) -> usize {
        self.max_tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (Box<dyn InferenceModel>, foil_core::TaskData) {
        crate::testutil::arithmetic_setup()
    }

    /// A model whose logits are another's times a constant (NaN: a diverged run; 1: the
    /// same logits), with only the trait's default `prefill_repeated`.
    struct Scaled(Box<dyn InferenceModel>, f32);

    impl InferenceModel for Scaled {
        fn forward(&self, input: &foil_core::batch::SeqInput) -> Tensor<B, 3> {
            self.0.forward(input) * self.1
        }
        fn prefill(&self, input: &foil_core::batch::SeqInput) -> (Tensor<B, 2>, DecodeCache) {
            let (logits, cache) = self.0.prefill(input);
            (logits * self.1, cache)
        }
        fn decode(
            &self,
            cache: &mut DecodeCache,
            tokens: Tensor<B, 2, burn::tensor::Int>,
            positions: Tensor<B, 2, burn::tensor::Int>,
        ) -> Tensor<B, 2> {
            self.0.decode(cache, tokens, positions) * self.1
        }
        fn device(&self) -> foil_core::backend::Device {
            self.0.device()
        }
        fn context(&self) -> usize {
            self.0.context()
        }
    }

    #[test]
    fn same_seed_same_completions_and_n_per_prompt() {
        let (model, task) = setup();
        let s = Local {
            n: 3,
            max_tokens: 10,
            ..Default::default()
        };
        let a = s
            .sample(model.as_ref(), task.tokenizer.as_ref(), &task.train, 5)
            .unwrap();
        let b = s
            .sample(model.as_ref(), task.tokenizer.as_ref(), &task.train, 5)
            .unwrap();
        let c = s
            .sample(model.as_ref(), task.tokenizer.as_ref(), &task.train, 6)
            .unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 4);
        assert!(a.iter().all(|g| g.completions.len() == 3));
        assert!(
            a.iter()
                .flat_map(|g| &g.completions)
                .all(|c| c.tokens.len() <= 10)
        );
    }

    #[test]
    fn rows_split_into_near_equal_contiguous_groups() {
        // 10 rows in 3 groups: boundaries ⌊10·i/3⌋ = 0, 3, 6, 10, so the last takes the extra row
        assert_eq!(split_rows(10, 3), vec![0..3, 3..6, 6..10]);
        assert_eq!(split_rows(4, 1), vec![0..4]);
        // never more groups than rows, never an empty group
        assert_eq!(split_rows(2, 8), vec![0..1, 1..2]);
        assert_eq!(split_rows(0, 2), vec![0..0]);
    }

    #[test]
    fn equal_consecutive_prompts_form_runs() {
        let p = |v: &[u32]| v.to_vec();
        let (d, n) = runs(&[
            p(&[1, 2]),
            p(&[1, 2]),
            p(&[3]),
            p(&[1, 2]),
            p(&[3]),
            p(&[3]),
        ]);
        assert_eq!(d, vec![p(&[1, 2]), p(&[3]), p(&[1, 2]), p(&[3])]);
        assert_eq!(n, vec![2, 1, 1, 2]);
        assert_eq!(runs(&[]), (vec![], vec![]));
    }

    /// Prefilling each prompt once and copying its cache to its `n` rows (the host path's
    /// `prefill_repeated`) samples exactly what prefilling every row does (the trait's
    /// default, through a wrapper that does not override it): same tokens, same log-probs
    /// and entropies to the bit, in one row group and in three (whose boundaries cut runs).
    #[test]
    fn shared_prompt_prefill_samples_what_prefilling_every_row_does() {
        let (model, task) = setup();
        // ×1 is exact: the same logits, through the trait's default prefill_repeated
        let every = Scaled(crate::testutil::arithmetic_setup().0, 1.0);
        for threads in [1, 3] {
            let s = Local {
                n: 4,
                max_tokens: 12,
                threads,
                ..Default::default()
            };
            let shared = s
                .sample(model.as_ref(), task.tokenizer.as_ref(), &task.train, 3)
                .unwrap();
            let all = s
                .sample(&every, task.tokenizer.as_ref(), &task.train, 3)
                .unwrap();
            assert_eq!(shared, all, "threads {threads}");
            // the completions of one prompt differ, so a wrong row copy would show
            let c = &shared[0].completions;
            assert!(c.iter().any(|x| x.tokens != c[0].tokens));
        }
    }

    /// Decoding in row groups on separate threads is a schedule, not a different sampler:
    /// one group and three groups (12 rows → 4 + 4 + 4, rows finishing at different steps)
    /// give the same tokens and the same log-probs to float rounding.
    #[test]
    fn row_groups_on_threads_sample_what_one_batch_samples() {
        let (model, task) = setup();
        let run = |threads| {
            Local {
                n: 3,
                max_tokens: 12,
                threads,
                ..Default::default()
            }
            .sample(model.as_ref(), task.tokenizer.as_ref(), &task.train, 11)
            .unwrap()
        };
        let (one, three) = (run(1), run(3));
        let rows = |g: &[Group]| -> Vec<Completion> {
            g.iter().flat_map(|g| g.completions.clone()).collect()
        };
        let (a, b) = (rows(&one), rows(&three));
        assert_eq!(a.len(), 12);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.tokens, y.tokens);
            assert_eq!(x.finish, y.finish);
            for (p, q) in x.logprobs.iter().zip(&y.logprobs) {
                assert!((p - q).abs() < 1e-4, "{p} vs {q}");
            }
        }
        // the rows differ among themselves, so a mix-up of rows between groups would show
        assert!(a.iter().any(|c| c.tokens != a[0].tokens));
    }

    /// A step's rows are processed by however many threads rayon's pool has; the uniforms
    /// are drawn beforehand in row order, so one thread and four give the same completions
    /// (one row group, so that only the pool differs).
    #[test]
    fn completions_do_not_depend_on_the_thread_pool() {
        let (model, task) = setup();
        let sampler = Local {
            n: 4,
            max_tokens: 12,
            threads: 1,
            ..Default::default()
        };
        let in_pool = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    sampler
                        .sample(model.as_ref(), task.tokenizer.as_ref(), &task.train, 3)
                        .unwrap()
                })
        };
        let (one, four) = (in_pool(1), in_pool(4));
        assert_eq!(one, four);
        // rows differ among themselves, so rows given each other's uniforms would show
        let first: Vec<&Vec<u32>> = one[0].completions.iter().map(|c| &c.tokens).collect();
        assert!(first.iter().any(|t| *t != first[0]), "{first:?}");
    }

    /// A model whose logits went NaN (a diverged run) has no token to draw: a clear error
    /// naming the row, where the sampler used to return token 0 with a NaN log-prob.
    #[test]
    fn nan_logits_are_an_error() {
        let (model, task) = setup();
        let nan = Scaled(model, f32::NAN);
        for temperature in [0.0, 1.0] {
            let s = Local {
                temperature,
                ..Default::default()
            };
            let e = s
                .sample(&nan, task.tokenizer.as_ref(), &task.train, 0)
                .unwrap_err()
                .to_string();
            assert!(e.contains("no token of row 0 can be drawn"), "{e}");
        }
    }

    #[test]
    fn recorded_logprobs_equal_a_full_forward_pass() {
        // At temperature 1 without truncation the behaviour log-prob of each sampled token
        // is the log-softmax of the model's logits over every id but padding, which a full
        // forward pass over prompt + completion recomputes.
        let (model, task) = setup();
        let s = Local {
            n: 2,
            max_tokens: 8,
            ..Default::default()
        };
        let groups = s
            .sample(model.as_ref(), task.tokenizer.as_ref(), &task.train[..2], 1)
            .unwrap();
        let prompts: Vec<Vec<u32>> = groups
            .iter()
            .flat_map(|g| {
                let ids = task.tokenizer.encode_prompt(&g.problem.prompt).unwrap();
                std::iter::repeat_n(ids, g.completions.len())
            })
            .collect();
        let completions: Vec<&Completion> = groups.iter().flat_map(|g| &g.completions).collect();
        let rows: Vec<(&[u32], &[u32])> = prompts
            .iter()
            .zip(&completions)
            .map(|(p, c)| (p.as_slice(), c.tokens.as_slice()))
            .collect();
        let (batch, p) = SeqBatch::prompt_response(&rows, 0);
        let logits = to_vec(model.forward(&batch.to_input(&model.device())));
        let v = task.tokenizer.vocab_size();
        let mut checked = 0;
        for (i, c) in completions.iter().enumerate() {
            for (k, (&tok, &want)) in c.tokens.iter().zip(&c.logprobs).enumerate() {
                let col = p + k - 1;
                let z = &logits[(i * batch.t + col) * v..(i * batch.t + col + 1) * v];
                // log-softmax over ids 1.. (id 0 is padding)
                let m = z[1..].iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let lse = m + z[1..].iter().map(|x| (x - m).exp()).sum::<f32>().ln();
                let got = z[tok as usize] - lse;
                assert!(
                    (got - want).abs() < 1e-4,
                    "row {i} token {k}: {got} vs {want}"
                );
                checked += 1;
            }
        }
        assert!(checked >= 4);
    }

    #[test]
    fn logit_processors_restrict_what_is_sampled() {
        // forbid every single character but "7" (1-grams of the alphabet without it): only
        // "7" and end-of-sequence remain, so every sampled token is one of them and its
        // recorded probability is its share of the two (not of the full softmax)
        let (model, task) = setup();
        let others: String = foil_data::arithmetic::ALPHABET
            .chars()
            .filter(|c| *c != '7')
            .collect();
        let forbid = crate::ForbiddenSequences {
            sequences: vec![others],
            min_n: 1,
            max_n: 1,
            ..Default::default()
        };
        let s = Local {
            n: 4,
            max_tokens: 6,
            logit_processors: LogitProcessors::new(vec![Box::new(forbid)]),
            ..Default::default()
        };
        let tok = task.tokenizer.as_ref();
        let seven = tok.encode("7").unwrap()[0];
        let groups = s.sample(model.as_ref(), tok, &task.train, 3).unwrap();
        let plain = Local {
            n: 4,
            max_tokens: 6,
            ..Default::default()
        };
        let free = plain.sample(model.as_ref(), tok, &task.train, 3).unwrap();
        assert_ne!(groups, free);
        for c in groups.iter().flat_map(|g| &g.completions) {
            for (&t, &lp) in c.tokens.iter().zip(&c.logprobs) {
                assert!(t == seven || tok.is_eos(t), "{c:?}");
                // a sampled token kept some mass
                assert!(lp <= 0.0 && lp.is_finite());
            }
        }
        // a processor list survives a recipe round trip
        let back: Local = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn stop_strings_end_a_completion() {
        let (model, task) = setup();
        // every character is a possible stop string, so each completion stops after
        // its first non-EOS token
        let stop: Vec<String> = foil_data::arithmetic::ALPHABET
            .chars()
            .map(String::from)
            .collect();
        let s = Local {
            n: 4,
            max_tokens: 10,
            stop,
            ..Default::default()
        };
        let groups = s
            .sample(model.as_ref(), task.tokenizer.as_ref(), &task.train, 2)
            .unwrap();
        for c in groups.iter().flat_map(|g| &g.completions) {
            assert_eq!(c.tokens.len(), 1, "{c:?}");
            assert!(matches!(c.finish, Finish::Stop | Finish::Eos));
        }
    }
}
