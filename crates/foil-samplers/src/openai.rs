//! `openai`: completions from any OpenAI-compatible server (vLLM, SGLang, llama.cpp's
//! server, a hosted API) instead of the in-process policy.
//!
//! ```text
//! for each prompt x (up to `concurrency` requests in flight):
//!     POST {base_url}/completions        {model, prompt: x, n, max_tokens, temperature,
//!                                         top_p, stop, seed, logprobs: 1}
//!     or {base_url}/chat/completions      {…, messages: [{role: user, content: x}],
//!                                         logprobs: true}
//!     retry on connection errors, 408, 429 and 5xx: wait backoff_ms · 2^attempt
//!     (capped at max_backoff_ms), at most max_retries times
//! ```
//!
//! Each choice becomes a [`Completion`]: its text, our tokenizer's ids of that text (plus
//! the end-of-sequence id when the server says `finish_reason: stop`; `length` keeps the
//! text as is), and the server's per-token log-probabilities when their count equals our
//! token count (otherwise empty: the server's tokenizer differs). Training never relies on
//! them — the RL stage recomputes behaviour log-probabilities with its own frozen model —
//! so a remote sampler serves RL only when it serves the same weights (see the weight
//! sync in `docs/remote-inference.md`). A stop string the server reports (vLLM's
//! `stop_reason`) is put back on the text, as the local sampler keeps it. Without it, a
//! `stop` finish counts as the end-of-sequence token: set no stop strings for RL on a
//! server that does not report `stop_reason`.
//!
//! `sync` hands the updated weights to the server after each RL update ([`WeightSync`]):
//! a Hugging Face directory and a reload request (SGLang), or a GGUF file and a restart of
//! a server foil manages (llama.cpp).
//!
//! Seeds: request `r` for problem `i` sends `seed = hash(seed, i, r)`, so a server that
//! honours per-request seeds (vLLM, llama.cpp) reproduces a run. Errors name the URL and
//! quote the start of a bad body; a server that returns fewer choices than asked for
//! (some do not implement `n`) is an error that suggests `n_per_request: 1`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use foil_core::policy::{GgufDtype, InferenceModel, Policy};
use foil_core::{Completion, Finish, Group, Problem, Sampler, Tokenizer, register_part};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Which OpenAI route to call.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Endpoint {
    /// `/completions`: the prompt is continued as raw text.
    #[default]
    Completions,
    /// `/chat/completions`: the prompt is one user message (the server applies the chat
    /// template).
    Chat,
}

/// Recipe part: `sampler: {type: openai, base_url: "http://127.0.0.1:8000/v1",
/// model: my-model, n: 8, max_tokens: 256}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpenAi {
    /// Server root including `/v1`, e.g. `http://127.0.0.1:8080/v1`. Plain HTTP only.
    pub base_url: String,
    /// `model` field of each request (vLLM and SGLang check it; llama.cpp ignores it).
    pub model: String,
    /// Environment variable holding an API key, sent as `Authorization: Bearer …` when
    /// set.
    pub api_key_env: String,
    pub endpoint: Endpoint,
    /// Completions per prompt.
    pub n: usize,
    /// Completions asked for in one request (0 = all `n`); 1 for servers without `n`.
    pub n_per_request: usize,
    pub temperature: f32,
    pub top_p: f32,
    /// Longest completion, in the server's tokens.
    pub max_tokens: usize,
    pub stop: Vec<String>,
    /// Ask for per-token log-probabilities.
    pub logprobs: bool,
    /// Send a per-request seed derived from the run seed.
    pub seeded: bool,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Retries of one request after a retryable failure.
    pub max_retries: u32,
    /// First wait before a retry; doubles each retry.
    pub backoff_ms: u64,
    /// Longest wait between retries.
    pub max_backoff_ms: u64,
    /// Time limit of one request, connection included.
    pub timeout_s: u64,
    /// Hand the server the policy's weights after updates (see [`WeightSync`]).
    pub sync: Option<WeightSync>,
}

/// Weight sync for remote rollouts: after every `every`-th policy update the policy is
/// exported into `dir` and the server is made to serve it.
///
/// - `format: safetensors` (default): a Hugging Face model directory (`config.json`,
///   `model.safetensors`, tokenizer files; [`Policy::export`]), then `reload_body` is
///   POSTed to `reload_url`. The string `{dir}` anywhere in the body becomes the
///   directory's absolute path. The default body is SGLang's `/update_weights_from_disk`
///   request (`{"model_path": "{dir}"}`); vLLM's stock server has no such route.
/// - `format: gguf`: one file `{dir}/model.gguf` ([`Policy::export_gguf`], matrices in
///   `gguf_dtype`) for llama.cpp. llama.cpp's server has no reload route, so `restart`
///   makes foil manage it: foil starts `restart.command` (`{gguf}` replaced by the file)
///   on `restart.initial_gguf` before the first rollout, and at each sync stops the
///   process it started and starts it again on the new file, waiting until
///   `{base_url}/models` answers. See `docs/remote-inference.md`.
///
/// Logged per sync: `sync_export_s`, `sync_mb`, and `sync_reload_s` or `sync_restart_s`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WeightSync {
    /// Export directory, replaced at each sync (written beside it, then renamed).
    pub dir: std::path::PathBuf,
    /// `safetensors` (a Hugging Face directory) or `gguf` (`{dir}/model.gguf`).
    pub format: SyncFormat,
    /// Matrix storage of a GGUF export: `f32` (exact) or `f16` (half the bytes).
    pub gguf_dtype: GgufDtype,
    /// Route that makes the server reload; empty = export only.
    pub reload_url: String,
    pub reload_body: Value,
    /// A server process foil starts and restarts on each new export (llama.cpp).
    pub restart: Option<Restart>,
    /// Sync after every k-th update.
    pub every: usize,
    /// The process `restart` started (internal state, not a recipe field).
    #[serde(skip)]
    pub server: ServerHandle,
}

/// The server process a [`Restart`] started, shared by clones of the sampler and
/// stopped when the last one is dropped.
#[derive(Debug, Clone, Default)]
pub struct ServerHandle(std::sync::Arc<Mutex<Option<ManagedServer>>>);

/// Which files a weight sync writes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum SyncFormat {
    #[default]
    Safetensors,
    Gguf,
}

/// `sync.restart`: a server foil runs itself, e.g. llama.cpp's
/// `[llama-server, -m, "{gguf}", --port, "8080"]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Restart {
    /// Program and arguments; `{gguf}` in any of them becomes the model file's path.
    pub command: Vec<String>,
    /// The model served before the first sync (the policy's starting weights, e.g. the
    /// `.gguf` the `hf` policy loads, or `foil export --format gguf`'s output).
    pub initial_gguf: std::path::PathBuf,
    /// Longest wait for `{base_url}/models` to answer after a start.
    pub ready_timeout_s: f64,
}

impl Default for Restart {
    fn default() -> Self {
        Self {
            command: Vec::new(),
            initial_gguf: std::path::PathBuf::new(),
            ready_timeout_s: 120.0,
        }
    }
}

/// A server process foil started; killed when dropped.
#[derive(Debug)]
pub struct ManagedServer {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl ManagedServer {
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ManagedServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The last `n` lines of a file (a server's stderr), for error messages.
fn tail(path: &std::path::Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

impl Restart {
    /// Starts the command on `gguf` and waits until `{base_url}/models` answers.
    fn start(
        &self,
        gguf: &std::path::Path,
        base_url: &str,
        log: &std::path::Path,
        agent: &ureq::Agent,
    ) -> anyhow::Result<ManagedServer> {
        let Some((program, args)) = self.command.split_first() else {
            anyhow::bail!(
                "weight sync: `restart.command` is empty (e.g. [llama-server, -m, \"{{gguf}}\", --port, \"8080\"])"
            );
        };
        let gguf = gguf.to_string_lossy();
        let fill = |a: &String| a.replace("{gguf}", &gguf);
        if let Some(parent) = log.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let err = std::fs::File::create(log)
            .with_context(|| format!("weight sync: creating {}", log.display()))?;
        let child = std::process::Command::new(fill(program))
            .args(args.iter().map(fill))
            .stdin(std::process::Stdio::null())
            .stdout(err.try_clone()?)
            .stderr(err)
            .spawn()
            .with_context(|| format!("weight sync: starting `{}`", fill(program)))?;
        let mut server = ManagedServer {
            child,
            log: log.to_path_buf(),
        };
        let url = format!("{}/models", base_url.trim_end_matches('/'));
        let t = std::time::Instant::now();
        loop {
            if let Some(status) = server.child.try_wait()? {
                anyhow::bail!(
                    "weight sync: the server `{}` exited ({status}) before {url} answered; \
                     the end of its output ({}):\n{}",
                    self.command.join(" "),
                    server.log.display(),
                    tail(&server.log, 20)
                );
            }
            if agent.get(&url).call().is_ok() {
                return Ok(server);
            }
            if t.elapsed().as_secs_f64() > self.ready_timeout_s {
                server.stop();
                anyhow::bail!(
                    "weight sync: {url} did not answer within ready_timeout_s = {} s after \
                     starting `{}`; the end of its output ({}):\n{}",
                    self.ready_timeout_s,
                    self.command.join(" "),
                    server.log.display(),
                    tail(&server.log, 20)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Default for WeightSync {
    fn default() -> Self {
        Self {
            dir: "runs/weight-sync".into(),
            format: SyncFormat::Safetensors,
            gguf_dtype: GgufDtype::F32,
            reload_url: String::new(),
            reload_body: json!({"model_path": "{dir}"}),
            restart: None,
            every: 1,
            server: Default::default(),
        }
    }
}

/// `v` with every string `{dir}` inside replaced by `dir`.
pub fn fill_dir(v: &Value, dir: &str) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace("{dir}", dir)),
        Value::Array(a) => Value::Array(a.iter().map(|x| fill_dir(x, dir)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), fill_dir(x, dir)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Total size of the files directly in `dir`, in bytes.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

impl WeightSync {
    /// Starts the managed server on `restart.initial_gguf` if `restart` is set and it
    /// is not running yet (called before each rollout).
    pub fn ensure_started(&self, base_url: &str, agent: &ureq::Agent) -> anyhow::Result<()> {
        let Some(restart) = &self.restart else {
            return Ok(());
        };
        self.check()?;
        let mut server = self
            .server
            .0
            .lock()
            .expect("no panics while holding the lock");
        if server.is_none() {
            anyhow::ensure!(
                restart.initial_gguf.is_file(),
                "weight sync: restart.initial_gguf `{}` is not a file (the GGUF served before \
                 the first sync: the policy's .gguf, or `foil export --format gguf` output)",
                restart.initial_gguf.display()
            );
            let log = self.server_log();
            *server = Some(restart.start(&restart.initial_gguf, base_url, &log, agent)?);
        }
        Ok(())
    }

    /// Where the managed server's output goes: `{dir}.server.log`.
    fn server_log(&self) -> std::path::PathBuf {
        let mut p = self.dir.clone().into_os_string();
        p.push(".server.log");
        p.into()
    }

    /// Settings that cannot work together.
    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.restart.is_none() || self.format == SyncFormat::Gguf,
            "weight sync: `restart` serves a GGUF file; set `format: gguf`"
        );
        Ok(())
    }

    /// Exports `policy` and makes the server serve it; returns the metrics.
    pub fn run(
        &self,
        policy: &dyn Policy,
        agent: &ureq::Agent,
        api_key_env: &str,
        base_url: &str,
    ) -> anyhow::Result<Vec<(String, f64)>> {
        self.check()?;
        let t = std::time::Instant::now();
        let parent = self
            .dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        std::fs::create_dir_all(parent)
            .with_context(|| format!("weight sync: creating {}", parent.display()))?;
        let name = self.dir.file_name().ok_or_else(|| {
            anyhow::anyhow!("weight sync: `dir` {} has no name", self.dir.display())
        })?;
        let tmp = parent.join(format!(".{}.tmp", name.to_string_lossy()));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir_all(&tmp)?;
        match self.format {
            SyncFormat::Safetensors => policy.export(&tmp),
            SyncFormat::Gguf => policy.export_gguf(&tmp.join("model.gguf"), self.gguf_dtype),
        }
        .with_context(|| format!("weight sync: exporting the policy to {}", tmp.display()))?;
        // a managed server may still read the old file: stop it before replacing it
        let mut server = self
            .server
            .0
            .lock()
            .expect("no panics while holding the lock");
        if let Some(mut s) = server.take() {
            s.stop();
        }
        if self.dir.exists() {
            std::fs::remove_dir_all(&self.dir)
                .with_context(|| format!("weight sync: replacing {}", self.dir.display()))?;
        }
        std::fs::rename(&tmp, &self.dir)?;
        let export_s = t.elapsed().as_secs_f64();
        let mb = dir_bytes(&self.dir) as f64 / 1e6;
        let mut out = vec![
            ("sync_export_s".to_string(), export_s),
            ("sync_mb".to_string(), mb),
        ];
        if let Some(restart) = &self.restart {
            let t = std::time::Instant::now();
            let gguf = std::fs::canonicalize(self.dir.join("model.gguf"))?;
            let log = self.server_log();
            *server = Some(restart.start(&gguf, base_url, &log, agent)?);
            out.push(("sync_restart_s".to_string(), t.elapsed().as_secs_f64()));
        }
        drop(server);
        if !self.reload_url.is_empty() {
            let abs = std::fs::canonicalize(&self.dir)?;
            let body = fill_dir(&self.reload_body, &abs.to_string_lossy());
            let t = std::time::Instant::now();
            let mut req = agent.post(&self.reload_url);
            if let Ok(key) = std::env::var(api_key_env)
                && !key.is_empty()
            {
                req = req.header("Authorization", &format!("Bearer {key}"));
            }
            let mut resp = req.send_json(&body).map_err(|e| {
                anyhow::anyhow!("weight sync: cannot reach {}: {e}", self.reload_url)
            })?;
            let status = resp.status().as_u16();
            if !(200..300).contains(&status) {
                let text = resp.body_mut().read_to_string().unwrap_or_default();
                anyhow::bail!(
                    "weight sync: {} answered HTTP {status}: {}",
                    self.reload_url,
                    snippet(&text)
                );
            }
            out.push(("sync_reload_s".to_string(), t.elapsed().as_secs_f64()));
        }
        Ok(out)
    }
}

impl Default for OpenAi {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:8000/v1".into(),
            model: "default".into(),
            api_key_env: "OPENAI_API_KEY".into(),
            endpoint: Endpoint::Completions,
            n: 8,
            n_per_request: 0,
            temperature: 1.0,
            top_p: 1.0,
            max_tokens: 256,
            stop: Vec::new(),
            logprobs: true,
            seeded: true,
            concurrency: 8,
            max_retries: 5,
            backoff_ms: 250,
            max_backoff_ms: 8_000,
            timeout_s: 300,
            sync: None,
        }
    }
}

register_part!(
    Sampler,
    "openai",
    OpenAi,
    "completions from an OpenAI-compatible server (vLLM, SGLang, llama.cpp): n, logprobs, stop strings, seeds, concurrency, retries with backoff"
);

/// One request: problem index, how many completions, request index within the problem.
#[derive(Debug, Clone, Copy)]
struct Job {
    problem: usize,
    n: usize,
    index: usize,
}

/// One choice as the server returned it.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub text: String,
    pub finish_reason: String,
    /// The stop string that ended it, when the server says so.
    pub stop_reason: Option<String>,
    /// Per-token log-probabilities (nulls dropped).
    pub logprobs: Vec<f32>,
}

/// What went wrong with one attempt.
enum Failure {
    /// Worth another try (connection refused, timeout, 408/429/5xx).
    Retry(String),
    /// Not worth it (4xx, a body that is not an OpenAI answer).
    Fatal(String),
}

/// The start of a body, for error messages.
fn snippet(body: &str) -> String {
    let s: String = body.chars().take(200).collect();
    if body.chars().count() > 200 {
        format!("{s}…")
    } else {
        s
    }
}

/// `splitmix64` of the run seed, problem and request: a per-request seed that fits a
/// signed 32-bit field (llama.cpp reads it as int).
fn request_seed(seed: u64, problem: usize, request: usize) -> u64 {
    let mut z = seed
        ^ (problem as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (request as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) & 0x7FFF_FFFF
}

/// Parses an OpenAI completions or chat answer into `n` choices ordered by `index`.
pub fn parse_choices(body: &str, endpoint: Endpoint, n: usize) -> anyhow::Result<Vec<Choice>> {
    let v: Value = serde_json::from_str(body)
        .map_err(|e| anyhow::anyhow!("the answer is not JSON ({e}): {}", snippet(body)))?;
    if let Some(err) = v.get("error") {
        anyhow::bail!(
            "the server answered with an error: {}",
            snippet(&err.to_string())
        );
    }
    let choices = v
        .get("choices")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow::anyhow!("the answer has no `choices` list: {}", snippet(body)))?;
    anyhow::ensure!(
        choices.len() == n,
        "asked for n = {n} completions, the server returned {} (servers without `n` need \
         `n_per_request: 1`)",
        choices.len()
    );
    let mut out: Vec<(usize, Choice)> = Vec::with_capacity(n);
    for (k, c) in choices.iter().enumerate() {
        let index = c
            .get("index")
            .and_then(Value::as_u64)
            .map_or(k, |i| i as usize);
        let text = match endpoint {
            Endpoint::Completions => c.get("text").and_then(Value::as_str),
            Endpoint::Chat => c
                .get("message")
                .and_then(|m| m.get("content"))
                .and_then(Value::as_str),
        }
        .ok_or_else(|| {
            anyhow::anyhow!(
                "choice {k} has no {}: {}",
                match endpoint {
                    Endpoint::Completions => "`text`",
                    Endpoint::Chat => "`message.content`",
                },
                snippet(&c.to_string())
            )
        })?
        .to_string();
        let finish_reason = c
            .get("finish_reason")
            .and_then(Value::as_str)
            .unwrap_or("length")
            .to_string();
        let stop_reason = c
            .get("stop_reason")
            .and_then(Value::as_str)
            .map(str::to_string);
        let lp = c.get("logprobs").filter(|l| !l.is_null());
        let logprobs: Vec<f32> = match (endpoint, lp) {
            (_, None) => Vec::new(),
            (Endpoint::Completions, Some(l)) => l
                .get("token_logprobs")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_f64)
                        .map(|x| x as f32)
                        .collect()
                })
                .unwrap_or_default(),
            (Endpoint::Chat, Some(l)) => l
                .get("content")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.get("logprob").and_then(Value::as_f64))
                        .map(|x| x as f32)
                        .collect()
                })
                .unwrap_or_default(),
        };
        out.push((
            index,
            Choice {
                text,
                finish_reason,
                stop_reason,
                logprobs,
            },
        ));
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out.into_iter().map(|(_, c)| c).collect())
}

impl OpenAi {
    fn url(&self) -> String {
        let base = self.base_url.trim_end_matches('/');
        match self.endpoint {
            Endpoint::Completions => format!("{base}/completions"),
            Endpoint::Chat => format!("{base}/chat/completions"),
        }
    }

    /// The JSON body of one request.
    pub fn body(&self, prompt: &str, n: usize, seed: u64) -> Value {
        let mut b = json!({
            "model": self.model,
            "n": n,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
        });
        match self.endpoint {
            Endpoint::Completions => {
                b["prompt"] = json!(prompt);
                if self.logprobs {
                    b["logprobs"] = json!(1);
                }
            }
            Endpoint::Chat => {
                b["messages"] = json!([{"role": "user", "content": prompt}]);
                if self.logprobs {
                    b["logprobs"] = json!(true);
                }
            }
        }
        if !self.stop.is_empty() {
            b["stop"] = json!(self.stop);
        }
        if self.seeded {
            b["seed"] = json!(seed);
        }
        b
    }

    fn agent(&self) -> ureq::Agent {
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(self.timeout_s.max(1))))
            .http_status_as_error(false)
            .build()
            .into()
    }

    fn attempt(
        &self,
        agent: &ureq::Agent,
        url: &str,
        body: &Value,
        n: usize,
    ) -> Result<Vec<Choice>, Failure> {
        let mut req = agent.post(url);
        if let Ok(key) = std::env::var(&self.api_key_env)
            && !key.is_empty()
        {
            req = req.header("Authorization", &format!("Bearer {key}"));
        }
        let mut resp = match req.send_json(body) {
            Ok(r) => r,
            Err(e) => return Err(Failure::Retry(format!("cannot reach {url}: {e}"))),
        };
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| Failure::Retry(format!("reading the answer of {url}: {e}")))?;
        match status {
            200..=299 => parse_choices(&text, self.endpoint, n)
                .map_err(|e| Failure::Fatal(format!("{url}: {e:#}"))),
            408 | 429 | 500..=599 => Err(Failure::Retry(format!(
                "{url} answered HTTP {status}: {}",
                snippet(&text)
            ))),
            _ => Err(Failure::Fatal(format!(
                "{url} answered HTTP {status}: {}",
                snippet(&text)
            ))),
        }
    }

    /// One request with retries and exponential backoff.
    pub fn request(
        &self,
        agent: &ureq::Agent,
        prompt: &str,
        n: usize,
        seed: u64,
    ) -> anyhow::Result<Vec<Choice>> {
        let url = self.url();
        let body = self.body(prompt, n, seed);
        let mut wait = self.backoff_ms;
        let mut attempt = 0;
        loop {
            match self.attempt(agent, &url, &body, n) {
                Ok(c) => return Ok(c),
                Err(Failure::Fatal(e)) => anyhow::bail!("openai sampler: {e}"),
                Err(Failure::Retry(e)) if attempt >= self.max_retries => anyhow::bail!(
                    "openai sampler: {e} (gave up after {} attempts; is the server running \
                     and `base_url` right?)",
                    attempt + 1
                ),
                Err(Failure::Retry(_)) => {
                    std::thread::sleep(Duration::from_millis(wait));
                    wait = (wait.saturating_mul(2)).min(self.max_backoff_ms);
                    attempt += 1;
                }
            }
        }
    }

    /// A choice as a completion in our tokenizer's ids.
    fn completion(&self, tokenizer: &dyn Tokenizer, c: Choice) -> anyhow::Result<Completion> {
        let (mut text, finish) = match (c.finish_reason.as_str(), c.stop_reason) {
            ("stop", Some(s)) => (c.text + &s, Finish::Stop),
            ("stop", None) => (c.text, Finish::Eos),
            _ => (c.text, Finish::Length),
        };
        let mut tokens = tokenizer.encode(&text).with_context(|| {
            format!(
                "the policy's tokenizer cannot encode a server completion: {}",
                snippet(&text)
            )
        })?;
        if finish == Finish::Eos {
            tokens.push(tokenizer.eos_id());
        }
        let logprobs = if c.logprobs.len() == tokens.len() {
            c.logprobs
        } else {
            Vec::new()
        };
        text.shrink_to_fit();
        Ok(Completion {
            tokens,
            text,
            logprobs,
            entropies: Vec::new(),
            finish,
        })
    }
}

#[typetag::serde(name = "openai")]
impl Sampler for OpenAi {
    fn sample(
        &self,
        _model: &dyn InferenceModel,
        tokenizer: &dyn Tokenizer,
        problems: &[Problem],
        seed: u64,
    ) -> anyhow::Result<Vec<Group>> {
        anyhow::ensure!(self.n > 0, "openai sampler: n must be at least 1");
        anyhow::ensure!(
            self.base_url.starts_with("http://"),
            "openai sampler: base_url `{}` must start with http:// (this build has no TLS; \
             put an https endpoint behind a local proxy)",
            self.base_url
        );
        let per = if self.n_per_request == 0 {
            self.n
        } else {
            self.n_per_request.min(self.n)
        };
        let mut jobs = Vec::new();
        for p in 0..problems.len() {
            let mut left = self.n;
            let mut index = 0;
            while left > 0 {
                let n = per.min(left);
                jobs.push(Job {
                    problem: p,
                    n,
                    index,
                });
                left -= n;
                index += 1;
            }
        }
        let agent = self.agent();
        if let Some(sync) = &self.sync {
            sync.ensure_started(&self.base_url, &agent)?;
        }
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let results: Mutex<Vec<Option<anyhow::Result<Vec<Choice>>>>> =
            Mutex::new((0..jobs.len()).map(|_| None).collect());
        std::thread::scope(|s| {
            for _ in 0..self.concurrency.clamp(1, jobs.len().max(1)) {
                s.spawn(|| {
                    loop {
                        let j = next.fetch_add(1, Ordering::Relaxed);
                        if j >= jobs.len() || failed.load(Ordering::Relaxed) {
                            break;
                        }
                        let job = jobs[j];
                        let r = self
                            .request(
                                &agent,
                                &problems[job.problem].prompt,
                                job.n,
                                request_seed(seed, job.problem, job.index),
                            )
                            .with_context(|| format!("problem {}", problems[job.problem].id));
                        if r.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        results.lock().expect("no panics while holding the lock")[j] = Some(r);
                    }
                });
            }
        });
        let results = results.into_inner().expect("threads joined");
        let mut groups: Vec<Group> = problems
            .iter()
            .map(|p| Group {
                problem: p.clone(),
                completions: Vec::with_capacity(self.n),
            })
            .collect();
        for (job, r) in jobs.iter().zip(results) {
            let Some(r) = r else { continue };
            for c in r? {
                groups[job.problem]
                    .completions
                    .push(self.completion(tokenizer, c)?);
            }
        }
        if let Some(g) = groups.iter().find(|g| g.completions.len() != self.n) {
            anyhow::bail!("openai sampler: problem {} got no answer", g.problem.id);
        }
        Ok(groups)
    }

    fn n(&self) -> usize {
        self.n
    }

    fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    fn sync_weights(&self, policy: &dyn Policy, step: usize) -> anyhow::Result<Vec<(String, f64)>> {
        match &self.sync {
            Some(sync) if (step + 1).is_multiple_of(sync.every.max(1)) => {
                sync.run(policy, &self.agent(), &self.api_key_env, &self.base_url)
            }
            _ => Ok(Vec::new()),
        }
    }
}
