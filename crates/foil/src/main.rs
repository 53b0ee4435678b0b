//! `foil`: run, check and list recipes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use foil_core::recipe::Recipe;
use foil_trainers::{RunOptions, run};

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
}

fn main() -> ExitCode {
    foil::link_all();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            recipe,
            overrides,
            resume,
            runs_dir,
            stop_after,
            quiet,
        } => {
            let opts = RunOptions {
                overrides,
                runs_dir: Some(runs_dir),
                run_dir: None,
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
