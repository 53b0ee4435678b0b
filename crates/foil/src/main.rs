//! `foil`: run, check and list recipes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use foil_core::recipe::Recipe;
use foil_trainers::{RunOptions, run};

/// mimalloc keeps freed pages for reuse where glibc's malloc returns the large tensor
/// buffers of every step to the kernel and faults them in again: 3.3–4.9× fewer page
/// faults and 1.7 % less time on the idle train-step bench (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "foil",
    version,
    about = "Fine-tune language models with RL and preference objectives that learn from negatives"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a recipe (or resume a stopped run).
    Run {
        /// The recipe YAML file (not needed with --resume).
        recipe: Option<PathBuf>,
        /// Override a field: `--set stages.1.advantage.type=rloo`.
        #[arg(long = "set", value_name = "PATH=VALUE")]
        overrides: Vec<String>,
        /// Continue a stopped run from its newest checkpoint.
        #[arg(long, value_name = "RUN_DIR")]
        resume: Option<PathBuf>,
        /// Parent directory of new runs.
        #[arg(long, default_value = "runs")]
        runs_dir: PathBuf,
        /// The exact directory of the new run (instead of `<runs-dir>/<name>-<time>`), e.g.
        /// when a later stage reads a file an earlier one writes into the run
        /// (`recipes/armap.yaml`).
        #[arg(long, value_name = "DIR", conflicts_with = "resume")]
        run_dir: Option<PathBuf>,
        /// Stop after this many steps, leaving a resumable checkpoint.
        #[arg(long, value_name = "STEPS")]
        stop_after: Option<usize>,
        /// No progress bars.
        #[arg(long)]
        quiet: bool,
    },
    /// Validate a recipe without running it.
    Check {
        recipe: PathBuf,
        #[arg(long = "set", value_name = "PATH=VALUE")]
        overrides: Vec<String>,
    },
    /// Print every registered part with its fields and defaults.
    List,
    /// Sample from a policy: a Hugging Face directory, a GGUF file, a run or a checkpoint.
    Generate {
        /// Model directory, .gguf file, run directory or checkpoint directory.
        #[arg(long)]
        policy: PathBuf,
        /// Prompt text (repeat for a batch).
        #[arg(long = "prompt", required = true)]
        prompts: Vec<String>,
        #[arg(long, default_value_t = 64)]
        max_tokens: usize,
        /// Pick the most likely token each step.
        #[arg(long, conflicts_with = "temperature")]
        greedy: bool,
        #[arg(long, default_value_t = 1.0)]
        temperature: f32,
        #[arg(long, default_value_t = 1.0)]
        top_p: f32,
        /// Completions per prompt.
        #[arg(short = 'n', long, default_value_t = 1)]
        n: usize,
        /// Format the prompt with the model's chat template (as a user message).
        #[arg(long)]
        chat: bool,
        /// System message for --chat.
        #[arg(long, requires = "chat")]
        system: Option<String>,
        /// One JSON line per completion (token ids and text).
        #[arg(long)]
        json: bool,
        #[arg(long, default_value = "cpu")]
        device: String,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Generate once untimed first (GPU kernels compile and autotune on first use).
        #[arg(long)]
        warmup: bool,
        /// Parameter dtype of a pretrained model: f32, or bf16 on a GPU.
        #[arg(long, default_value = "f32", value_parser = ["f32", "bf16"])]
        dtype: String,
    },
    /// Check this build against transformers on the fixture checkpoints (logits of a
    /// padded batch and 20 greedy KV-cache steps), on any device.
    Selftest {
        /// Directory of fixture checkpoints (each with expected.json).
        #[arg(long, default_value = "crates/foil-models/tests/fixtures/hf")]
        fixtures: PathBuf,
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Largest accepted max abs logit difference.
        #[arg(long, default_value_t = 1e-4)]
        tol: f32,
    },
    /// Time training steps or matmuls on a device; one JSON line each (crates/foil/src/bench.rs).
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Write a run's policy as a Hugging Face model directory or a GGUF file (LoRA merged).
    Export {
        /// Run directory (newest checkpoint) or checkpoint directory.
        run: PathBuf,
        /// Output directory (safetensors) or file (gguf).
        #[arg(long, short)]
        out: PathBuf,
        /// `safetensors` (a Hugging Face directory) or `gguf` (one file for llama.cpp).
        #[arg(long, default_value = "safetensors")]
        format: String,
        /// Matrix type of a GGUF export: `f32` or `f16`.
        #[arg(long, default_value = "f32")]
        gguf_dtype: String,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// SFT steps of a `tiny_gpt` on random tokens: forward, NLL, backward, AdamW. The
    /// defaults are issue 7's GPU config; PyTorch's side: scripts/bench/torch_train_step.py.
    Train(foil::bench::TrainBench),
    /// `[n, n] × [n, n]` products.
    Matmul(foil::bench::MatmulBench),
}

fn bench(what: BenchCommand) -> anyhow::Result<()> {
    let line = match what {
        BenchCommand::Train(cfg) => serde_json::to_string(&foil::bench::train(&cfg)?)?,
        BenchCommand::Matmul(cfg) => serde_json::to_string(&foil::bench::matmul(&cfg)?)?,
    };
    println!("{line}");
    Ok(())
}

fn main() -> ExitCode {
    foil::link_all();
    foil::keep_freed_pages();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            recipe,
            overrides,
            resume,
            runs_dir,
            run_dir,
            stop_after,
            quiet,
        } => {
            let opts = RunOptions {
                overrides,
                runs_dir: Some(runs_dir),
                run_dir,
                resume,
                stop_after,
                progress: !quiet,
                print_table: true,
            };
            run(recipe.as_deref(), &opts).map(|s| {
                if s.finished {
                    eprintln!("run finished: {}", s.dir.display());
                } else {
                    eprintln!(
                        "run stopped early; resume with: foil run --resume {}",
                        s.dir.display()
                    );
                }
            })
        }
        Command::Check { recipe, overrides } => Recipe::load(&recipe, &overrides)
            .map(|r| {
                println!(
                    "{}: ok ({} stages: {})",
                    recipe.display(),
                    r.stages.len(),
                    r.stages
                        .iter()
                        .map(|s| serde_json::to_value(s)
                            .ok()
                            .and_then(|v| v["type"].as_str().map(String::from))
                            .unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join(" → ")
                );
            })
            .map_err(Into::into),
        Command::Generate {
            policy,
            prompts,
            max_tokens,
            greedy,
            temperature,
            top_p,
            n,
            chat,
            system,
            json,
            device,
            seed,
            warmup,
            dtype,
        } => {
            let opts = foil::generate::GenerateOptions {
                policy,
                prompts,
                max_tokens,
                temperature: if greedy { 0.0 } else { temperature },
                top_p,
                n,
                chat: chat.then_some(system),
                device,
                seed,
                warmup,
                dtype: if dtype == "bf16" {
                    foil::generate::Dtype::Bf16
                } else {
                    foil::generate::Dtype::F32
                },
            };
            foil::generate::generate(&opts).map(|report| {
                for o in &report.outputs {
                    if json {
                        println!("{}", serde_json::to_string(o).expect("serialisable"));
                    } else {
                        println!("{}", o.text);
                    }
                }
                eprintln!(
                    "{} completion(s), {:.1} tokens/s (load {:.2} s, generate {:.2} s)",
                    report.outputs.len(),
                    report.tokens_per_second(),
                    report.load_seconds,
                    report.generate_seconds
                );
            })
        }
        Command::Selftest {
            fixtures,
            device,
            tol,
        } => foil::selftest::selftest(&fixtures, &device, tol),
        Command::Export {
            run,
            out,
            format,
            gguf_dtype,
        } => {
            let dtype = match gguf_dtype.as_str() {
                "f32" => Ok(foil_core::policy::GgufDtype::F32),
                "f16" => Ok(foil_core::policy::GgufDtype::F16),
                other => Err(anyhow::anyhow!(
                    "--gguf-dtype {other:?}: expected f32 or f16"
                )),
            };
            let format = match format.as_str() {
                "safetensors" => Ok(foil::export::ExportFormat::Safetensors),
                "gguf" => dtype.map(foil::export::ExportFormat::Gguf),
                other => Err(anyhow::anyhow!(
                    "--format {other:?}: expected safetensors or gguf"
                )),
            };
            format
                .and_then(|f| foil::export::export_as(&run, &out, f))
                .map(|()| eprintln!("wrote {}", out.display()))
        }
        Command::Bench { what } => bench(what),
        Command::List => {
            print!("{}", foil_core::registry::listing());
            println!(
                "\nDevices\n  {}",
                foil_core::backend::device_names().join(", ")
            );
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
