//! [`CollectiveAllReduce`]: the gradient all-reduce over `burn-collective` 0.21.
//!
//! Each worker thread holds one peer (`PeerId` = its global rank). The first
//! `all_reduce_mean` registers the peer with `burn_collective::register` (which waits
//! until all `workers` local peers, and with `node:` all nodes, have registered), then every
//! call is `burn_collective::all_reduce(peer, grad, ReduceOperation::Mean)`; dropping the
//! peer calls `finish_collective`. burn-collective keeps one local server per backend type
//! per process, so [`CollectiveAllReduce::reset`] clears it before a new group.
//!
//! Unlike [`foil_core::grad_sync::ThreadAllReduce`], a peer that stops early is not
//! noticed by burn-collective: the other peers wait for it.

use burn::tensor::{Tensor, TensorPrimitive};
use burn_collective::{
    CollectiveConfig, PeerId, ReduceOperation, all_reduce, finish_collective, register,
    reset_collective,
};
use foil_core::backend::{B, Device, inner_device};
use foil_core::grad_sync::GradientSync;

use crate::NodeConfig;

/// One peer of a burn-collective all-reduce group (see the module docs).
pub struct CollectiveAllReduce {
    peer: PeerId,
    rank: usize,
    world: usize,
    device: Device,
    config: CollectiveConfig,
    registered: bool,
}

impl CollectiveAllReduce {
    /// Peer `rank` (global) of a group with `local_workers` peers in this process and, with
    /// `node`, `node.nodes` such processes; tensors on `device` (its inner device is used:
    /// gradients live there).
    pub fn new(
        rank: usize,
        local_workers: usize,
        device: &Device,
        node: Option<&NodeConfig>,
    ) -> anyhow::Result<Self> {
        let mut config = CollectiveConfig::default().with_num_devices(local_workers);
        let mut world = local_workers;
        if let Some(n) = node {
            let parse = |what: &str, s: &str| {
                s.parse::<burn_communication::Address>()
                    .map_err(|e| anyhow::anyhow!("data_parallel.node.{what} `{s}`: {e}"))
            };
            config = config
                .with_num_nodes(n.nodes)
                .with_global_address(parse("orchestrator", &n.orchestrator)?)
                .with_node_address(parse("address", &n.address)?)
                .with_data_service_port(n.data_service_port);
            world *= n.nodes as usize;
        }
        anyhow::ensure!(
            config.is_valid(),
            "invalid burn-collective config: {config}"
        );
        anyhow::ensure!(rank < world, "peer rank {rank} is not below {world}");
        Ok(Self {
            peer: PeerId::from(rank),
            rank,
            world,
            device: inner_device(device),
            config,
            registered: false,
        })
    }

    /// Forgets every registered peer and pending operation of this process's local
    /// collective server (for foil's backend type).
    pub fn reset() {
        reset_collective::<B>();
    }
}

impl GradientSync for CollectiveAllReduce {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.world
    }

    fn all_reduce_mean(&mut self, grad: Tensor<B, 1>) -> anyhow::Result<Tensor<B, 1>> {
        if !self.registered {
            register::<B>(self.peer, self.device.clone(), self.config.clone())
                .map_err(|e| anyhow::anyhow!("burn-collective register of {}: {e:?}", self.peer))?;
            self.registered = true;
        }
        let reduced = all_reduce::<B>(
            self.peer,
            grad.into_primitive().tensor(),
            ReduceOperation::Mean,
        )
        .map_err(|e| anyhow::anyhow!("burn-collective all_reduce on {}: {e:?}", self.peer))?;
        Ok(Tensor::from_primitive(TensorPrimitive::Float(reduced)))
    }
}

impl Drop for CollectiveAllReduce {
    fn drop(&mut self) {
        if self.registered {
            let _ = finish_collective::<B>(self.peer);
        }
    }
}
