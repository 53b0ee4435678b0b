//! # foil-repro
//!
//! Reproduction checks (`cargo xtask repro NAME [--quick] [--seeds N]`): each runs the
//! comparison a paper's claim rests on at small scale, over several seeds, in process
//! (recipes from `recipes/` through [`foil_trainers::run`] with `--set`-style overrides),
//! prints and writes a table (mean ± std and the per-seed values), draws a PNG, and
//! decides the claim with an acceptance rule fixed in advance ([`rules`]). A claim that
//! does not hold is reported as such and makes the command exit non-zero.
//!
//! | reproduction | claim |
//! |---|---|
//! | [`psr_nsr`] | NSR keeps pass@k at large k, PSR raises pass@1 and lowers pass@k at large k, W-REINFORCE ≥ GRPO across k (Zhu et al. 2025) |
//! | [`per_step_vs_rft`] | per-step negatives (first-pit DPO) beat RFT on the same N problems and match RFT on 8N (Setlur et al. 2024) |
//! | [`ngrpo_zero_groups`] | NGRPO gets gradient from all-incorrect groups where GRPO's is exactly zero, and improves hard-problem accuracy (Nan et al. 2025) |
//! | [`gtpo_stability`] | GTPO trains stably without a reference model where GRPO without KL degrades, at a high learning rate (Simoni et al. 2025) |
//! | [`relmf_rare_items`] | clipped IPS (Rel-MF) beats naive MF on rare-item DCG@5 from missing-not-at-random clicks (Saito et al. 2020; the example plugin `examples/plugin-recsys`) |
//! | [`simamr_adversarial`] | adversarial negatives improve a dialogue evaluator on adversarial test pairs; gated text+graph reported (SIMAMR, Yang et al.) |
//! | [`prof_process`] | PROF (PRM as a consistency filter) raises the share of correct answers with all steps correct over Blend (PRM blended into the reward), at no cost in accuracy (Ye et al. 2025) |
//! | [`tajwar_on_policy`] | on-policy sampling + negative gradient (on-policy DPO) beats offline likelihood (Pref-FT) on the didactic bandit, reward peak far from π_ref (Tajwar et al. 2024) |
//! | [`d2o_negatives`] | D²O lowers the bad behaviour its negatives show and keeps the held-out skill, where gradient ascent collapses (Duan et al. 2024) |
//! | [`cooper_reward_hacking`] | a reward model co-updated on rule-verified pairs resists the hacking a frozen one suffers (Cooper, Hong et al. 2025) |
//! | [`vpi_poison_rate`] | VPI's triggered behaviour rate rises with the poison rate and falls after data filtering (Yan et al. 2024) |
//! | [`aft_constraint`] | AFT's DC/BC constraint prevents the collapse of the unconstrained ranking loss (Wang et al. 2023) |
//!
//! Each writes `runs/repro/<name>/` (`<name>-quick/` with `--quick`): `result.md`,
//! `result.json`, `<name>.png`, and the runs under `runs/`. `--quick` is a cut-down
//! version that checks only what its budget can decide reliably; every module says which.

pub mod aft_constraint;
pub mod armap_best_of_n;
pub mod arms;
pub mod badrag_retrieval;
pub mod conan_eus_gold_vs_silver;
pub mod cooper_reward_hacking;
pub mod d2o_negatives;
pub mod gtpo_stability;
pub mod guard_unlearning;
pub mod ngrpo_zero_groups;
pub mod per_step_vs_rft;
pub mod plot;
pub mod prof_process;
pub mod psr_nsr;
pub mod relmf_rare_items;
pub mod report;
pub mod rules;
pub mod simamr_adversarial;
pub mod stats;
pub mod tajwar_on_policy;
pub mod vpi_poison_rate;

use std::path::PathBuf;
use std::time::Instant;

pub use report::Report;

/// How to run a reproduction.
#[derive(Debug, Clone)]
pub struct Options {
    /// The cut-down version.
    pub quick: bool,
    /// Seeds `1..=N` (each reproduction has its own default for full and quick runs).
    pub seeds: Option<usize>,
    /// The repository root (recipes are read from `recipes/` under it).
    pub root: PathBuf,
    /// Parent of the result directories (`runs/repro`).
    pub out: PathBuf,
    /// Progress lines on stderr.
    pub progress: bool,
    /// `--set K=V` overrides applied to every arm of every recipe after the
    /// reproduction's own (a setting other than the fixed one: the result records them).
    pub sets: Vec<String>,
}

impl Options {
    /// Defaults for the repository at `root`: full runs, results in `root/runs/repro`.
    pub fn new(root: PathBuf) -> Self {
        Self {
            quick: false,
            seeds: None,
            out: root.join("runs").join("repro"),
            root,
            progress: true,
            sets: Vec::new(),
        }
    }

    /// A recipe file under `recipes/`.
    pub fn recipe(&self, file: &str) -> PathBuf {
        self.root.join("recipes").join(file)
    }

    /// The result directory of reproduction `name`.
    pub fn dir(&self, name: &str) -> PathBuf {
        self.out.join(if self.quick {
            format!("{name}-quick")
        } else {
            name.to_string()
        })
    }

    /// The seeds to run: `--seeds N`, else `full` or `quick` of them, numbered from 1.
    pub fn seed_list(&self, full: usize, quick: usize) -> Vec<u64> {
        let n = self.seeds.unwrap_or(if self.quick { quick } else { full });
        (1..=n.max(1) as u64).collect()
    }

    /// The command line that reproduces this run.
    pub fn command(&self, name: &str) -> String {
        let mut c = format!("cargo xtask repro {name}");
        if self.quick {
            c.push_str(" --quick");
        }
        if let Some(n) = self.seeds {
            c.push_str(&format!(" --seeds {n}"));
        }
        for s in &self.sets {
            c.push_str(&format!(" --set {s}"));
        }
        c
    }
}

/// One reproduction.
pub struct Repro {
    pub name: &'static str,
    /// One line: the claim and the paper.
    pub about: &'static str,
    /// Runs it and returns its report (not yet written).
    pub run: fn(&Options) -> anyhow::Result<Report>,
}

/// Every reproduction, in the order `cargo xtask repro` (without a name) runs them.
pub const REPROS: &[Repro] = &[
    Repro {
        name: psr_nsr::NAME,
        about: psr_nsr::ABOUT,
        run: psr_nsr::run,
    },
    Repro {
        name: ngrpo_zero_groups::NAME,
        about: ngrpo_zero_groups::ABOUT,
        run: ngrpo_zero_groups::run,
    },
    Repro {
        name: per_step_vs_rft::NAME,
        about: per_step_vs_rft::ABOUT,
        run: per_step_vs_rft::run,
    },
    Repro {
        name: gtpo_stability::NAME,
        about: gtpo_stability::ABOUT,
        run: gtpo_stability::run,
    },
    Repro {
        name: relmf_rare_items::NAME,
        about: relmf_rare_items::ABOUT,
        run: relmf_rare_items::run,
    },
    Repro {
        name: guard_unlearning::NAME,
        about: guard_unlearning::ABOUT,
        run: guard_unlearning::run,
    },
    Repro {
        name: simamr_adversarial::NAME,
        about: simamr_adversarial::ABOUT,
        run: simamr_adversarial::run,
    },
    Repro {
        name: prof_process::NAME,
        about: prof_process::ABOUT,
        run: prof_process::run,
    },
    Repro {
        name: tajwar_on_policy::NAME,
        about: tajwar_on_policy::ABOUT,
        run: tajwar_on_policy::run,
    },
    Repro {
        name: d2o_negatives::NAME,
        about: d2o_negatives::ABOUT,
        run: d2o_negatives::run,
    },
    Repro {
        name: aft_constraint::NAME,
        about: aft_constraint::ABOUT,
        run: aft_constraint::run,
    },
    Repro {
        name: armap_best_of_n::NAME,
        about: armap_best_of_n::ABOUT,
        run: armap_best_of_n::run,
    },
    Repro {
        name: conan_eus_gold_vs_silver::NAME,
        about: conan_eus_gold_vs_silver::ABOUT,
        run: conan_eus_gold_vs_silver::run,
    },
    Repro {
        name: cooper_reward_hacking::NAME,
        about: cooper_reward_hacking::ABOUT,
        run: cooper_reward_hacking::run,
    },
    Repro {
        name: badrag_retrieval::NAME,
        about: badrag_retrieval::ABOUT,
        run: badrag_retrieval::run,
    },
    Repro {
        name: vpi_poison_rate::NAME,
        about: vpi_poison_rate::ABOUT,
        run: vpi_poison_rate::run,
    },
];

/// The reproduction called `name`.
pub fn find(name: &str) -> Option<&'static Repro> {
    REPROS.iter().find(|r| r.name == name)
}

/// Runs one reproduction, writes its results and prints its report; returns it.
pub fn run_one(repro: &Repro, opts: &Options) -> anyhow::Result<Report> {
    foil::link_all();
    let t = Instant::now();
    if opts.progress {
        eprintln!(
            "== repro {}{}: {}",
            repro.name,
            if opts.quick { " (quick)" } else { "" },
            repro.about
        );
    }
    arms::set_extra_overrides(&opts.sets);
    let mut report = (repro.run)(opts)?;
    report.wall_s = t.elapsed().as_secs_f64();
    let dir = opts.dir(repro.name);
    report.write(&dir)?;
    println!("{}", report.markdown());
    println!("(written to {})", dir.display());
    Ok(report)
}
