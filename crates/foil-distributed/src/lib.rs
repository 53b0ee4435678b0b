//! # foil-distributed
//!
//! Data-parallel training settings and the gradient all-reduce behind them.
//!
//! A stage (`sft`, `rl`) with `data_parallel: {workers: W}` trains `W` replicas of the
//! policy, each on a shard of the rows of every batch; after each backward pass the
//! gradients are averaged across the replicas ([`GradientSync`]) and every replica applies
//! the same AdamW step, so they stay identical (see `foil_core::grad_sync` for the
//! arithmetic and `foil-trainers`' `data_parallel.rs` for the exact whole-batch step).
//!
//! * `backend: threads` (default): [`ThreadAllReduce`], std threads in one process,
//!   tensors averaged on the host. Always built.
//! * `backend: collective`: [`CollectiveAllReduce`] over `burn-collective` 0.21
//!   (`ReduceOperation::Mean`; tree all-reduce between local devices, ring between nodes),
//!   behind this crate's off-by-default `collective` feature, because enabling
//!   burn-collective changes burn's own feature set and rebuilds it. With `node:` settings
//!   the same peers join burn-collective's global level across machines through its
//!   orchestrator (feature `orchestrator`, binary `foil-orchestrator`).

use foil_core::backend::{Device, inner_device, open_device};
pub use foil_core::grad_sync::{GradientSync, ThreadAllReduce};
use serde::{Deserialize, Serialize};

#[cfg(feature = "collective")]
mod collective;
#[cfg(feature = "collective")]
pub use collective::CollectiveAllReduce;

/// Whether this build has burn-collective (the `collective` feature).
pub const COLLECTIVE: bool = cfg!(feature = "collective");

/// Which all-reduce the workers use.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SyncBackend {
    /// [`ThreadAllReduce`]: std threads, one process, host-side mean.
    #[default]
    Threads,
    /// `CollectiveAllReduce`: burn-collective (needs the `collective` feature).
    Collective,
}

/// Who samples the rollouts of an `rl` stage with several workers.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Rollouts {
    /// The leader (worker 0) samples every prompt of a step; the workers only train. The
    /// data-parallel run then samples exactly what a one-worker run samples.
    #[default]
    Leader,
    /// Each local worker samples a consecutive share of the step's prompts side by side,
    /// with its own replica on its own device when that is another device of the leader's
    /// backend (else with the leader's snapshot); the groups are then verified, filtered and
    /// trained on as one batch. The samples differ from the leader's (each share has its
    /// own random stream), but a run stays reproducible for a given worker count. With one
    /// worker this is `Leader`; a remote sampler (`openai`) ignores the model it is handed,
    /// so there it only sends the shares to its server side by side.
    Workers,
}

impl Rollouts {
    /// The default: the leader samples.
    pub fn is_leader(&self) -> bool {
        *self == Rollouts::Leader
    }
}

/// burn-collective's global (multi-node) settings: one process per machine, each with
/// `workers` local peers. Every node runs the same recipe with its own `node_index` and
/// `address`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Number of nodes (processes) in the collective.
    pub nodes: u32,
    /// This node's index in `0..nodes`: its peers get the global ranks
    /// `node_index·workers .. (node_index+1)·workers` and the matching batch shards.
    pub node_index: u32,
    /// WebSocket address of the global orchestrator, e.g. `ws://10.0.0.1:3000`.
    pub orchestrator: String,
    /// This node's own address as the other nodes reach it, e.g. `ws://10.0.0.2:3001`.
    pub address: String,
    /// Port of this node's tensor data service (the port in `address`).
    pub data_service_port: u16,
}

/// Recipe part of a training stage: `data_parallel: {workers: 2, backend: threads}`, or one
/// worker per device: `data_parallel: {devices: [cuda:0, cuda:1]}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(try_from = "DataParallelFields")]
pub struct DataParallel {
    /// Replicas in this process (each its own thread).
    pub workers: usize,
    /// The all-reduce.
    pub backend: SyncBackend,
    /// Multi-node settings (`backend: collective` only).
    pub node: Option<NodeConfig>,
    /// One device string per local worker, worker 0 (the run's policy, which must be on
    /// this device) first, e.g. `[cuda:0, cuda:1]`. Empty: every worker on the run's
    /// `device`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    /// Who samples an `rl` stage's rollouts ([`Rollouts`]; default `leader`, left out of a
    /// written recipe).
    #[serde(skip_serializing_if = "Rollouts::is_leader")]
    pub rollouts: Rollouts,
}

/// The fields as written in a recipe: `workers` may be left out when `devices` is given.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataParallelFields {
    workers: Option<usize>,
    #[serde(default)]
    backend: SyncBackend,
    node: Option<NodeConfig>,
    #[serde(default)]
    devices: Vec<String>,
    #[serde(default)]
    rollouts: Rollouts,
}

impl TryFrom<DataParallelFields> for DataParallel {
    type Error = String;

    fn try_from(f: DataParallelFields) -> Result<Self, String> {
        let workers = match (f.workers, f.devices.len()) {
            (Some(w), 0) => w,
            (None, 0) => DataParallel::default().workers,
            (None, d) => d,
            (Some(w), d) if w == d => w,
            (Some(w), d) => {
                return Err(format!(
                    "data_parallel: workers is {w} but {d} devices are listed; list one device \
                     per worker (worker 0, the run's policy, first) or leave workers out"
                ));
            }
        };
        for (w, d) in f.devices.iter().enumerate() {
            foil_core::backend::parse_device(d)
                .map_err(|e| format!("data_parallel.devices[{w}]: {e}"))?;
        }
        Ok(Self {
            workers,
            backend: f.backend,
            node: f.node,
            devices: f.devices,
            rollouts: f.rollouts,
        })
    }
}

impl Default for DataParallel {
    fn default() -> Self {
        Self {
            workers: 2,
            backend: SyncBackend::Threads,
            node: None,
            devices: Vec::new(),
            rollouts: Rollouts::Leader,
        }
    }
}

impl DataParallel {
    /// Replicas over all nodes.
    pub fn world_size(&self) -> usize {
        self.workers * self.node.as_ref().map_or(1, |n| n.nodes as usize)
    }

    /// Global rank of local worker `local`.
    pub fn global_rank(&self, local: usize) -> usize {
        self.node
            .as_ref()
            .map_or(0, |n| n.node_index as usize * self.workers)
            + local
    }

    /// Checks the settings against a stage's `batch` (rows per step), with errors that say
    /// what to change: [`DataParallel::validate_settings`], `batch` divisible by the
    /// world size (the `sft` stage's equal shards), and no `rollouts` (a stage that samples
    /// nothing).
    pub fn validate(&self, stage: &str, batch: usize) -> anyhow::Result<()> {
        self.validate_settings(stage)?;
        anyhow::ensure!(
            self.rollouts == Rollouts::Leader,
            "{stage}: data_parallel.rollouts applies to the rl stage only ({stage} samples no \
             rollouts); leave it out"
        );
        let world = self.world_size();
        anyhow::ensure!(
            batch.is_multiple_of(world),
            "{stage}: batch ({batch}) must be divisible by the {world} data-parallel workers \
             so that every worker gets an equal shard"
        );
        Ok(())
    }

    /// Checks the settings that do not depend on the batch: at least one worker, `node:`
    /// only with `backend: collective` and a `node_index` below `nodes`, and a build that
    /// has the chosen backend.
    pub fn validate_settings(&self, stage: &str) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.workers >= 1,
            "{stage}: data_parallel.workers must be at least 1 (got 0)"
        );
        if let Some(n) = &self.node {
            anyhow::ensure!(
                self.backend == SyncBackend::Collective,
                "{stage}: data_parallel.node (multi-node) needs `backend: collective`"
            );
            anyhow::ensure!(
                n.nodes >= 1 && n.node_index < n.nodes,
                "{stage}: data_parallel.node.node_index ({}) must be below nodes ({})",
                n.node_index,
                n.nodes
            );
        }
        if self.backend == SyncBackend::Collective && !cfg!(feature = "collective") {
            anyhow::bail!(
                "{stage}: data_parallel.backend `collective` needs burn-collective, which this \
                 build leaves out: rebuild with --features foil-distributed/collective \
                 (or use `backend: threads`)"
            );
        }
        Ok(())
    }

    /// The device of each local worker, worker 0 first: `devices` opened (a CUDA device is
    /// checked for its driver), or `run_device` for every worker when none are listed.
    /// Worker 0 is the run's policy, so a listed first device must be `run_device`.
    pub fn worker_devices(&self, run_device: &Device) -> anyhow::Result<Vec<Device>> {
        anyhow::ensure!(
            self.workers >= 1,
            "data_parallel.workers must be at least 1"
        );
        let run_device = inner_device(run_device);
        if self.devices.is_empty() {
            return Ok(vec![run_device; self.workers]);
        }
        anyhow::ensure!(
            self.devices.len() == self.workers,
            "data_parallel: {} devices listed for {} workers",
            self.devices.len(),
            self.workers
        );
        let devices = self
            .devices
            .iter()
            .enumerate()
            .map(|(w, d)| {
                open_device(d).map_err(|e| anyhow::anyhow!("data_parallel.devices[{w}]: {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(
            devices[0] == run_device,
            "data_parallel.devices[0] is `{}`, but worker 0 is the run's policy, which is on \
             {run_device:?}: list the run's `device` first",
            self.devices[0]
        );
        Ok(devices)
    }

    /// One all-reduce handle per local worker, rank 0 first, for the replicas on `devices`
    /// (one per worker, as [`DataParallel::worker_devices`] gives).
    pub fn peers(&self, devices: &[Device]) -> anyhow::Result<Vec<Box<dyn GradientSync>>> {
        anyhow::ensure!(
            self.workers >= 1,
            "data_parallel.workers must be at least 1"
        );
        anyhow::ensure!(
            devices.len() == self.workers,
            "data_parallel: {} devices for {} workers",
            devices.len(),
            self.workers
        );
        match self.backend {
            SyncBackend::Threads => Ok(ThreadAllReduce::group(self.workers)?
                .into_iter()
                .map(|p| Box::new(p) as Box<dyn GradientSync>)
                .collect()),
            #[cfg(feature = "collective")]
            SyncBackend::Collective => {
                CollectiveAllReduce::reset();
                devices
                    .iter()
                    .enumerate()
                    .map(|(w, device)| {
                        Ok(Box::new(CollectiveAllReduce::new(
                            self.global_rank(w),
                            self.workers,
                            device,
                            self.node.as_ref(),
                        )?) as Box<dyn GradientSync>)
                    })
                    .collect()
            }
            #[cfg(not(feature = "collective"))]
            SyncBackend::Collective => anyhow::bail!(
                "data_parallel.backend `collective` needs burn-collective, which this build \
                 leaves out: rebuild with --features foil-distributed/collective"
            ),
        }
    }
}

/// Runs burn-collective's global orchestrator on `port` until the process is stopped
/// (Ctrl-C). Multi-node runs name it in `data_parallel.node.orchestrator`.
#[cfg(feature = "orchestrator")]
pub fn run_orchestrator(port: u16) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(burn_collective::start_global_orchestrator(port));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<DataParallel, String> {
        serde_saphyr::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_two_thread_workers() {
        let dp = parse("{}").unwrap();
        assert_eq!(dp.workers, 2);
        assert_eq!(dp.backend, SyncBackend::Threads);
        assert_eq!(dp.world_size(), 2);
    }

    /// `rollouts` defaults to the leader and is then left out of a written recipe (which an
    /// older build can read back); `workers` is written and read back.
    #[test]
    fn rollouts_default_to_the_leader_and_round_trip() {
        let dp = parse("{workers: 2}").unwrap();
        assert_eq!(dp.rollouts, Rollouts::Leader);
        let written = serde_json::to_string(&dp).unwrap();
        assert!(!written.contains("rollouts"), "{written}");
        let dp = parse("{workers: 2, rollouts: workers}").unwrap();
        assert_eq!(dp.rollouts, Rollouts::Workers);
        let written = serde_json::to_string(&dp).unwrap();
        assert!(written.contains(r#""rollouts":"workers""#), "{written}");
        assert_eq!(parse(&written).unwrap(), dp);
        dp.validate_settings("rl").unwrap();
        let e = dp.validate("sft", 8).unwrap_err().to_string();
        assert!(
            e.contains("sft: data_parallel.rollouts applies to the rl stage only"),
            "{e}"
        );
    }

    #[test]
    fn zero_workers_is_an_error() {
        let dp = parse("{workers: 0}").unwrap();
        let e = dp.validate("sft", 8).unwrap_err().to_string();
        assert!(e.contains("workers must be at least 1"), "{e}");
    }

    #[test]
    fn batch_must_split_evenly() {
        let dp = parse("{workers: 3}").unwrap();
        let e = dp.validate("sft", 8).unwrap_err().to_string();
        assert!(e.contains("batch (8) must be divisible by the 3"), "{e}");
        dp.validate("sft", 9).unwrap();
    }

    #[test]
    fn settings_alone_ignore_the_batch_but_not_zero_workers() {
        // `rl` checks only the settings: its updates vary in size and split unevenly
        parse("{workers: 3}")
            .unwrap()
            .validate_settings("rl")
            .unwrap();
        let e = parse("{workers: 0}")
            .unwrap()
            .validate_settings("rl")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "rl: data_parallel.workers must be at least 1 (got 0)");
    }

    #[test]
    fn unknown_fields_and_backends_are_rejected() {
        assert!(parse("{workers: 2, wrokers: 3}").is_err());
        let e = parse("{backend: nccl}").unwrap_err();
        assert!(e.contains("threads") && e.contains("collective"), "{e}");
    }

    #[test]
    fn devices_set_the_workers_and_are_checked() {
        // workers follow the list when left out
        let dp = parse("{devices: [cpu, cpu-ndarray, cpu]}").unwrap();
        assert_eq!(dp.workers, 3);
        let cpu = foil_core::backend::parse_device("cpu").unwrap();
        let nd = foil_core::backend::parse_device("cpu-ndarray").unwrap();
        assert_eq!(
            dp.worker_devices(&cpu).unwrap(),
            vec![cpu.clone(), nd.clone(), cpu.clone()]
        );
        // the training (autodiff) device of the run's policy counts as its device
        let train = foil_core::backend::train_device(&cpu);
        assert_eq!(dp.worker_devices(&train).unwrap()[0], cpu);
        // without a list every worker is on the run's device
        assert_eq!(
            parse("{workers: 3}")
                .unwrap()
                .worker_devices(&train)
                .unwrap(),
            vec![cpu.clone(); 3]
        );
        // a count that disagrees with the list
        let e = parse("{workers: 2, devices: [cpu, cpu, cpu]}").unwrap_err();
        assert!(e.contains("workers is 2 but 3 devices are listed"), "{e}");
        parse("{workers: 3, devices: [cpu, cpu, cpu]}").unwrap();
        // worker 0 is the run's policy: the list must start with its device
        let e = dp.worker_devices(&nd).unwrap_err().to_string();
        assert!(
            e.contains("devices[0] is `cpu`") && e.contains("list the run's `device` first"),
            "{e}"
        );
        // a misspelt device names the entry and the accepted names
        let e = parse("{devices: [cpu, cpu-ndaray]}").unwrap_err();
        assert!(
            e.contains("data_parallel.devices[1]:") && e.contains("cpu-ndarray"),
            "{e}"
        );
    }

    #[test]
    fn multi_node_needs_collective_and_a_valid_index() {
        let node = "node: {nodes: 2, node_index: 1, orchestrator: 'ws://a:3000', \
                    address: 'ws://b:3001', data_service_port: 3001}";
        let dp = parse(&format!("{{workers: 2, {node}}}")).unwrap();
        let e = dp.validate("sft", 8).unwrap_err().to_string();
        assert!(e.contains("needs `backend: collective`"), "{e}");
        let dp = parse(&format!("{{workers: 2, backend: collective, {node}}}")).unwrap();
        // node 1 of 2 with 2 workers each: world 4, this node's ranks are 2 and 3
        assert_eq!(dp.world_size(), 4);
        assert_eq!((dp.global_rank(0), dp.global_rank(1)), (2, 3));
        let bad = parse(&format!(
            "{{workers: 2, backend: collective, {}}}",
            node.replace("node_index: 1", "node_index: 2")
        ))
        .unwrap();
        let e = bad.validate("sft", 8).unwrap_err().to_string();
        assert!(e.contains("node_index (2) must be below nodes (2)"), "{e}");
    }

    #[cfg(not(feature = "collective"))]
    #[test]
    fn collective_without_the_feature_says_how_to_rebuild() {
        let dp = parse("{workers: 2, backend: collective}").unwrap();
        let e = dp.validate("sft", 8).unwrap_err().to_string();
        assert!(
            e.contains("rebuild with --features foil-distributed/collective"),
            "{e}"
        );
        let device = foil_core::backend::parse_device("cpu").unwrap();
        let e = dp
            .peers(&[device.clone(), device])
            .err()
            .expect("an error")
            .to_string();
        assert!(e.contains("--features foil-distributed/collective"), "{e}");
    }
}
