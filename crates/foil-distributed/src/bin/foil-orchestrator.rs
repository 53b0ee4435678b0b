//! burn-collective's global orchestrator for multi-node data-parallel foil runs.
//!
//! `cargo run -p foil-distributed --features orchestrator --bin foil-orchestrator -- 3000`
//! listens on port 3000 (WebSocket); every node's recipe names it as
//! `data_parallel.node.orchestrator: ws://HOST:3000`. See docs/data-parallel.md.

fn main() -> anyhow::Result<()> {
    let port: u16 = match std::env::args().nth(1) {
        None => 3000,
        Some(p) => p
            .parse()
            .map_err(|_| anyhow::anyhow!("usage: foil-orchestrator [PORT] (got `{p}`)"))?,
    };
    foil_distributed::run_orchestrator(port)
}
