//! Two data-parallel workers, each on half of a batch, end with the same weights as one
//! worker on the whole batch.
//!
//! Why the math holds: the loss is the per-token mean NLL and every row has the same
//! number of loss tokens (4 rows × 4 response tokens, no padding), so each shard of 2 rows
//! has 8 tokens and `L(full) = ½·(L(shard0) + L(shard1))`; the gradient is linear, so the
//! all-reduced mean of the two shard gradients is the full batch's gradient, and the same
//! AdamW step from the same state gives the same weights. Tolerance: 1e-4 on logits after
//! two steps — the two sides add the same f32 terms in a different order, nothing else.
//!
//! AdamW is invariant to a constant scale of the gradient, so this weight-level test does
//! not by itself tell a mean from a sum; `foil-models`' `trainable::tests::
//! two_synced_shards_give_the_full_batch_gradient` checks the reduced gradients directly.
//! This test does fail when the workers do not see complementary shards (checked below).

use foil_core::backend::{B, parse_device};
use foil_core::batch::{SeqBatch, to_vec, token_logprobs};
use foil_core::policy::{OptimizerConfig, Policy};
use foil_core::{PolicyConfig, burn::tensor::Tensor};
use foil_distributed::{DataParallel, GradientSync, SyncBackend};
use foil_models::TinyGpt;

const VOCAB: usize = 9;
const SEED: u64 = 5;

fn rows() -> Vec<Vec<u32>> {
    vec![
        vec![1, 2, 3, 4, 5],
        vec![2, 4, 6, 8, 1],
        vec![3, 3, 7, 7, 2],
        vec![8, 6, 4, 2, 0],
    ]
}

fn policy() -> Box<dyn Policy> {
    policy_on("cpu")
}

/// The test policy on `device` (`cpu` = flex, `cpu-ndarray`: another device).
fn policy_on(device: &str) -> Box<dyn Policy> {
    let cfg = TinyGpt {
        d_model: 16,
        layers: 1,
        heads: 2,
        context: 8,
        mlp_ratio: 2,
        init_seed: 0,
        precision: Default::default(),
    };
    let mut p = cfg
        .build(VOCAB, &parse_device(device).unwrap(), SEED)
        .unwrap();
    // no clipping: clipping is per parameter on the reduced gradient, identical either way
    p.reset_optimizer(&OptimizerConfig::Adamw {
        lr: 1e-2,
        beta1: 0.9,
        beta2: 0.999,
        weight_decay: 0.0,
        grad_clip: None,
        warmup_steps: 0,
    });
    p
}

/// Per-token mean NLL of equal-length rows (1 prompt token + 4 response tokens each).
fn nll(p: &dyn Policy, rows: &[Vec<u32>]) -> Tensor<B, 1> {
    let pairs: Vec<(&[u32], &[u32])> = rows.iter().map(|r| (&r[..1], &r[1..])).collect();
    let (seqs, _) = SeqBatch::prompt_response(&pairs, 0);
    let input = seqs.to_input(&p.device());
    let targets = input.tokens.clone().slice([0..seqs.n, 1..seqs.t]);
    token_logprobs(p.forward(&input), targets).mean().neg()
}

/// Logits of a fixed probe under the policy's current weights.
fn probe(p: &dyn Policy) -> Vec<f32> {
    let inf = p.inference();
    let (seqs, _) = SeqBatch::prompt_response(&[(&[1u32, 5][..], &[7u32, 2, 3][..])], 0);
    to_vec(inf.forward(&seqs.to_input(&inf.device())))
}

fn one_worker(steps: usize) -> Vec<f32> {
    one_worker_of(&policy, &rows(), steps)
}

fn one_worker_of(make: &dyn Fn() -> Box<dyn Policy>, rows: &[Vec<u32>], steps: usize) -> Vec<f32> {
    let mut p = make();
    for _ in 0..steps {
        let loss = nll(p.as_ref(), rows);
        p.step(loss, 1e-2).unwrap();
    }
    probe(p.as_ref())
}

/// Two workers: worker 0 made by `make[0]`, worker 1 by `make[1]` (e.g. on another device)
/// and then loaded from worker 0's saved state (as the `sft` stage makes replicas);
/// `shards[w]` are worker w's rows.
fn two_workers(
    make: [&dyn Fn() -> Box<dyn Policy>; 2],
    peers: Vec<Box<dyn GradientSync>>,
    shards: [Vec<Vec<u32>>; 2],
    steps: usize,
) -> [Vec<f32>; 2] {
    let main = make[0]();
    let mut replica = make[1]();
    let dir = tempfile::tempdir().unwrap();
    main.save(dir.path()).unwrap();
    replica.load(dir.path()).unwrap();
    let mut workers = [main, replica];
    std::thread::scope(|s| {
        let handles: Vec<_> = workers
            .iter_mut()
            .zip(peers)
            .zip(&shards)
            .map(|((p, mut peer), shard)| {
                s.spawn(move || {
                    for _ in 0..steps {
                        let loss = nll(p.as_ref(), shard);
                        p.step_synced(loss, 1e-2, peer.as_mut()).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
    });
    [probe(workers[0].as_ref()), probe(workers[1].as_ref())]
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Two workers made by `make` on their `devices`, each on half of the batch, against one
/// flex worker on the whole batch: both within 1e-4 on the probe's logits after two steps,
/// while training moved them (> 1e-2), and both workers on the *same* half differ
/// (> 1e-3), so the check can fail. Returns the two workers' logits.
fn check_split(
    dp: &DataParallel,
    devices: &[foil_core::backend::Device],
    make: [&dyn Fn() -> Box<dyn Policy>; 2],
) -> [Vec<f32>; 2] {
    let before = probe(policy().as_ref());
    let full = one_worker(2);
    let r = rows();
    let halves = [r[..2].to_vec(), r[2..].to_vec()];
    let [w0, w1] = two_workers(make, dp.peers(devices).unwrap(), halves, 2);
    // training moved the weights (else the comparison below would be empty)
    assert!(max_abs_diff(&before, &full) > 1e-2);
    for (w, logits) in [&w0, &w1].into_iter().enumerate() {
        let d = max_abs_diff(logits, &full);
        assert!(d < 1e-4, "worker {w} of two vs one: max |Δlogit| = {d}");
    }
    // both workers on the first half is a different update: the check can fail
    let same = [r[..2].to_vec(), r[..2].to_vec()];
    let [wrong, _] = two_workers(make, dp.peers(devices).unwrap(), same, 2);
    assert!(max_abs_diff(&wrong, &full) > 1e-3);
    [w0, w1]
}

fn check(backend: SyncBackend) {
    let dp = DataParallel {
        workers: 2,
        backend,
        ..DataParallel::default()
    };
    let devices = dp.worker_devices(&parse_device("cpu").unwrap()).unwrap();
    let [w0, w1] = check_split(&dp, &devices, [&policy, &policy]);
    // the replicas are identical (same reduced gradient, same optimizer state)
    assert_eq!(max_abs_diff(&w0, &w1), 0.0);
}

#[test]
fn thread_workers_on_two_halves_match_one_worker_on_the_batch() {
    check(SyncBackend::Threads);
}

/// One worker per device: worker 0 on flex, worker 1 on ndarray (`devices: [cpu,
/// cpu-ndarray]`), two different burn devices in one process, so every tensor that crosses
/// between workers (gathered log-probs, reduced gradients) has to change device. Same
/// arithmetic and tolerance as above against one flex worker. The replicas are close but
/// need not be bit-identical here: the two backends apply the same AdamW update with their
/// own f32 kernels.
#[test]
fn workers_on_two_devices_match_one_worker_on_the_batch() {
    let dp: DataParallel = serde_saphyr::from_str("{devices: [cpu, cpu-ndarray]}").unwrap();
    assert_eq!(dp.workers, 2);
    let devices = dp.worker_devices(&parse_device("cpu").unwrap()).unwrap();
    assert_ne!(devices[0], devices[1]);
    assert_eq!(devices[1], parse_device("cpu-ndarray").unwrap());
    let on_ndarray = || policy_on("cpu-ndarray");
    assert_eq!(
        foil_core::backend::inner_device(&on_ndarray().device()),
        devices[1]
    );
    check_split(&dp, &devices, [&policy, &on_ndarray]);
}

/// The `hf` policy with LoRA adapters (the qwen2 test fixture of foil-models): the frozen
/// base weights take no gradients and are skipped by the all-reduce on both workers; the
/// adapters get the mean gradient. Same arithmetic as above: 4 rows × 5 loss tokens, two
/// shards of 2 rows.
#[test]
fn lora_hf_workers_on_two_halves_match_one_worker() {
    let make = || -> Box<dyn Policy> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../foil-models/tests/fixtures/hf/qwen2");
        let cfg: foil_models::hf::policy::Hf = serde_json::from_value(serde_json::json!({
            "path": path,
            "lora": {"rank": 4, "alpha": 8.0, "targets": ["q_proj", "v_proj", "down_proj"]},
        }))
        .unwrap();
        let mut p = cfg.build(128, &parse_device("cpu").unwrap(), 3).unwrap();
        p.reset_optimizer(&OptimizerConfig::adamw(1e-2));
        p
    };
    let rows: Vec<Vec<u32>> = vec![
        vec![5, 9, 17, 3, 44, 8],
        vec![7, 7, 21, 90, 2, 60],
        vec![11, 4, 4, 30, 12, 1],
        vec![99, 3, 8, 8, 71, 6],
    ];
    let base = make().reference().map(|r| {
        let (seqs, _) = SeqBatch::prompt_response(&[(&[1u32, 5][..], &[7u32, 2, 3][..])], 0);
        to_vec(r.forward(&seqs.to_input(&r.device())))
    });
    let full = one_worker_of(&make, &rows, 3);
    let cpu = parse_device("cpu").unwrap();
    let peers = DataParallel::default().peers(&[cpu.clone(), cpu]).unwrap();
    let [w0, w1] = two_workers(
        [&make, &make],
        peers,
        [rows[..2].to_vec(), rows[2..].to_vec()],
        3,
    );
    assert_eq!(max_abs_diff(&w0, &w1), 0.0);
    // the adapters moved (B starts at 0, so step 1 moves only B; steps 2-3 both)
    assert!(max_abs_diff(&w0, &base.unwrap()) > 1e-3);
    let d = max_abs_diff(&w0, &full);
    assert!(d < 1e-4, "LoRA: two workers vs one: max |Δlogit| = {d}");
}

#[test]
fn a_policy_without_the_hook_says_so() {
    // the trait's default is an error, not a silent plain step
    struct Plain;
    impl Policy for Plain {
        fn forward(&self, _: &foil_core::batch::SeqInput) -> Tensor<B, 3> {
            unreachable!()
        }
        fn step(&mut self, _: Tensor<B, 1>, _: f64) -> anyhow::Result<()> {
            Ok(())
        }
        fn reset_optimizer(&mut self, _: &OptimizerConfig) {}
        fn inference(&self) -> Box<dyn foil_core::policy::InferenceModel> {
            unreachable!()
        }
        fn save(&self, _: &std::path::Path) -> anyhow::Result<()> {
            Ok(())
        }
        fn load(&mut self, _: &std::path::Path) -> anyhow::Result<()> {
            Ok(())
        }
        fn num_params(&self) -> usize {
            0
        }
        fn device(&self) -> foil_core::backend::Device {
            parse_device("cpu").unwrap()
        }
    }
    let device = parse_device("cpu").unwrap();
    let loss = Tensor::<B, 1>::zeros([1], &device);
    let mut peers = foil_distributed::ThreadAllReduce::group(1).unwrap();
    let e = Plain
        .step_synced(loss, 1e-3, &mut peers[0])
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not support data-parallel training"), "{e}");
    assert!(e.contains("Plain"), "{e}");
}

/// The same check through burn-collective (in-process, two local peers; `peers` resets
/// burn-collective's per-backend server first).
#[cfg(feature = "collective")]
#[test]
fn collective_workers_on_two_halves_match_one_worker_on_the_batch() {
    check(SyncBackend::Collective);
}
