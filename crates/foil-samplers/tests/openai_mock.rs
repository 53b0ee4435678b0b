//! The `openai` sampler against a scripted HTTP server in this process: request bodies,
//! parsing, retries with backoff, and the errors for a bad status, garbage, a short
//! answer and a server that is down.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use foil_core::backend::parse_device;
use foil_core::{Finish, PolicyConfig, Problem, Sampler, Task, TaskData};
use foil_data::Arithmetic;
use foil_models::TinyGpt;
use foil_samplers::openai::{Endpoint, OpenAi};
use serde_json::{Value, json};

/// Answers each request with `respond(request number, path, body)` = (status, body).
type Respond = dyn Fn(usize, &str, &Value) -> (u16, String) + Send + Sync;

struct Mock {
    url: String,
    log: Arc<Mutex<Vec<(String, Value)>>>,
}

fn serve(respond: Box<Respond>) -> Mock {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let log: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let seen = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut len = 0;
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                if h == "\r\n" || h.is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0u8; len];
            reader.read_exact(&mut body).unwrap();
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let k = {
                let mut l = seen.lock().unwrap();
                l.push((path.clone(), body.clone()));
                l.len() - 1
            };
            let (status, text) = respond(k, &path, &body);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
        }
    });
    Mock { url, log }
}

/// A completions answer with `n` choices `"<k>+1=<k+1>|A:<k+1>"`, k = index; one
/// log-probability per character (the char tokenizer's token count) and
/// `finish_reason: stop`, except that choice 1 stops for length.
fn answer(n: usize) -> String {
    let choices: Vec<Value> = (0..n)
        .rev() // out of order: the sampler sorts by `index`
        .map(|k| {
            let text = format!("{k}+1={}|A:{}", k + 1, k + 1);
            let lps: Vec<f64> = (0..text.len() + 1).map(|i| -0.5 * i as f64).collect();
            json!({
                "index": k,
                "text": text,
                "finish_reason": if k == 1 { "length" } else { "stop" },
                "logprobs": {"token_logprobs": lps},
            })
        })
        .collect();
    json!({"choices": choices}).to_string()
}

fn setup() -> (Box<dyn foil_core::policy::InferenceModel>, TaskData) {
    let task = Arithmetic {
        train: 3,
        test: 1,
        ..Default::default()
    }
    .build(0)
    .unwrap();
    let gpt = TinyGpt {
        d_model: 16,
        layers: 1,
        heads: 2,
        context: 40,
        mlp_ratio: 2,
        init_seed: 1,
        precision: Default::default(),
    };
    let policy = gpt
        .build(
            task.tokenizer.vocab_size(),
            &parse_device("cpu").unwrap(),
            0,
        )
        .unwrap();
    (policy.inference(), task)
}

fn sampler(url: &str) -> OpenAi {
    OpenAi {
        base_url: url.into(),
        model: "m".into(),
        n: 3,
        max_tokens: 16,
        stop: vec!["|A:".into()],
        concurrency: 2,
        max_retries: 2,
        backoff_ms: 1,
        api_key_env: "FOIL_TEST_NO_SUCH_KEY".into(),
        ..Default::default()
    }
}

fn sample(s: &OpenAi, problems: &[Problem], seed: u64) -> anyhow::Result<Vec<foil_core::Group>> {
    let (model, task) = setup();
    s.sample(model.as_ref(), task.tokenizer.as_ref(), problems, seed)
}

#[test]
fn requests_carry_the_settings_and_answers_become_completions() {
    let mock = serve(Box::new(|_, _, b| {
        (200, answer(b["n"].as_u64().unwrap() as usize))
    }));
    let (_, task) = setup();
    let s = sampler(&mock.url);
    let groups = sample(&s, &task.train, 5).unwrap();
    assert_eq!(groups.len(), 3);
    let tok = task.tokenizer.as_ref();
    for (g, p) in groups.iter().zip(&task.train) {
        assert_eq!(g.problem, *p);
        assert_eq!(g.completions.len(), 3);
        // sorted by index: 0, 1, 2
        assert_eq!(g.completions[0].text, "0+1=1|A:1");
        assert_eq!(g.completions[2].text, "2+1=3|A:3");
        // stop → EOS appended: 9 characters + EOS = 10 tokens, matching the 10 server
        // log-probabilities, which are kept
        let c = &g.completions[0];
        assert_eq!(c.finish, Finish::Eos);
        let mut want = tok.encode("0+1=1|A:1").unwrap();
        want.push(tok.eos_id());
        assert_eq!(c.tokens, want);
        assert_eq!(c.logprobs.len(), 10);
        assert_eq!(c.logprobs[2], -1.0);
        // length → no EOS: 9 tokens ≠ 10 log-probabilities, which are dropped
        let c = &g.completions[1];
        assert_eq!(c.finish, Finish::Length);
        assert_eq!(c.tokens.len(), 9);
        assert!(c.logprobs.is_empty());
    }
    let log = mock.log.lock().unwrap();
    assert_eq!(log.len(), 3, "one request per problem");
    let mut seeds = Vec::new();
    for (path, b) in log.iter() {
        assert_eq!(path, "/v1/completions");
        assert_eq!(b["model"], "m");
        assert_eq!(b["n"], 3);
        assert_eq!(b["max_tokens"], 16);
        assert_eq!(b["logprobs"], 1);
        assert_eq!(b["stop"], json!(["|A:"]));
        assert_eq!(b["temperature"], 1.0);
        assert!(task.train.iter().any(|p| json!(p.prompt) == b["prompt"]));
        seeds.push((b["prompt"].clone(), b["seed"].as_u64().unwrap()));
    }
    drop(log);
    // seeds differ between problems and repeat for the same run seed
    seeds.sort_by_key(|s| s.1);
    seeds.dedup_by_key(|s| s.1);
    assert_eq!(seeds.len(), 3);
    sample(&s, &task.train, 5).unwrap();
    let log = mock.log.lock().unwrap();
    for (_, b) in &log[3..] {
        let first = seeds.iter().find(|s| s.0 == b["prompt"]).unwrap();
        assert_eq!(b["seed"].as_u64().unwrap(), first.1);
    }
}

#[test]
fn n_per_request_splits_and_stop_reason_is_kept() {
    let mock = serve(Box::new(|_, _, _| {
        (
            200,
            json!({"choices": [{"index": 0, "text": "1+1=2", "finish_reason": "stop",
                "stop_reason": "|A:", "logprobs": null}]})
            .to_string(),
        )
    }));
    let (_, task) = setup();
    let s = OpenAi {
        n_per_request: 1,
        seeded: false,
        logprobs: false,
        ..sampler(&mock.url)
    };
    let groups = sample(&s, &task.train[..1], 0).unwrap();
    let c = &groups[0].completions[2];
    assert_eq!(c.text, "1+1=2|A:");
    assert_eq!(c.finish, Finish::Stop);
    let log = mock.log.lock().unwrap();
    assert_eq!(log.len(), 3, "n = 3 at one per request");
    assert!(
        log.iter()
            .all(|(_, b)| b["n"] == 1 && b.get("seed").is_none() && b.get("logprobs").is_none())
    );
}

#[test]
fn retries_overloaded_and_failing_servers_then_succeeds() {
    // 503, 429, then answers
    let mock = serve(Box::new(|k, _, b| match k {
        0 => (503, "{\"error\": \"loading model\"}".into()),
        1 => (429, "slow down".into()),
        _ => (200, answer(b["n"].as_u64().unwrap() as usize)),
    }));
    let (_, task) = setup();
    let s = OpenAi {
        concurrency: 1,
        ..sampler(&mock.url)
    };
    let groups = sample(&s, &task.train[..1], 0).unwrap();
    assert_eq!(groups[0].completions.len(), 3);
    assert_eq!(mock.log.lock().unwrap().len(), 3);
}

#[test]
fn bad_status_garbage_short_answers_and_a_dead_server_are_clear_errors() {
    let (_, task) = setup();
    let one = &task.train[..1];
    let err = |s: &OpenAi| format!("{:#}", sample(s, one, 0).unwrap_err());

    let mock = serve(Box::new(|_, _, _| {
        (400, "{\"error\": \"unknown model m\"}".into())
    }));
    let e = err(&sampler(&mock.url));
    assert!(
        e.contains("HTTP 400") && e.contains("unknown model m"),
        "{e}"
    );
    assert_eq!(mock.log.lock().unwrap().len(), 1, "a 400 is not retried");

    let mock = serve(Box::new(|_, _, _| (200, "<html>proxy error</html>".into())));
    let e = err(&sampler(&mock.url));
    assert!(
        e.contains("not JSON") && e.contains("<html>proxy error"),
        "{e}"
    );

    let mock = serve(Box::new(|_, _, _| (200, answer(1))));
    let e = err(&sampler(&mock.url));
    assert!(
        e.contains("returned 1") && e.contains("n_per_request: 1"),
        "{e}"
    );

    let mock = serve(Box::new(|_, _, _| {
        (200, json!({"choices": [{"index": 0}]}).to_string())
    }));
    let e = err(&OpenAi {
        n: 1,
        ..sampler(&mock.url)
    });
    assert!(e.contains("no `text`"), "{e}");

    let mock = serve(Box::new(|_, _, _| (500, "boom".into())));
    let e = err(&sampler(&mock.url));
    assert!(
        e.contains("HTTP 500") && e.contains("gave up after 3 attempts"),
        "{e}"
    );
    assert_eq!(mock.log.lock().unwrap().len(), 3, "1 try + max_retries 2");

    // a port nobody listens on
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = err(&sampler(&format!("http://127.0.0.1:{port}/v1")));
    assert!(
        e.contains("cannot reach") && e.contains("is the server running"),
        "{e}"
    );
    assert!(e.contains(&task.train[0].id), "names the problem: {e}");

    let e = err(&sampler("https://api.example.com/v1"));
    assert!(e.contains("http://"), "{e}");
}

#[test]
fn chat_answers_are_parsed() {
    let mock = serve(Box::new(|_, _, _| {
        (
            200,
            json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "12"},
                "finish_reason": "stop",
                "logprobs": {"content": [{"token": "1", "logprob": -0.1},
                                         {"token": "2", "logprob": -0.2},
                                         {"token": "", "logprob": -0.3}]}}]})
            .to_string(),
        )
    }));
    let (_, task) = setup();
    let s = OpenAi {
        endpoint: Endpoint::Chat,
        n: 1,
        ..sampler(&mock.url)
    };
    let groups = sample(&s, &task.train[..1], 0).unwrap();
    let c = &groups[0].completions[0];
    assert_eq!(c.text, "12");
    // "1", "2", EOS: three tokens, three log-probabilities
    assert_eq!(c.logprobs, vec![-0.1, -0.2, -0.3]);
    let log = mock.log.lock().unwrap();
    assert_eq!(log[0].0, "/v1/chat/completions");
    assert_eq!(
        log[0].1["messages"][0]["content"],
        json!(task.train[0].prompt)
    );
    assert_eq!(log[0].1["logprobs"], true);
}

/// A trainable Hugging Face policy (the `smollm` fixture of foil-models: a tiny random
/// Llama-architecture model) on the CPU.
fn hf_policy() -> Box<dyn foil_core::policy::Policy> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../foil-models/tests/fixtures/hf/smollm");
    let hf: foil_models::hf::policy::Hf = serde_json::from_value(json!({ "path": path })).unwrap();
    hf.build(128, &parse_device("cpu").unwrap(), 0).unwrap()
}

#[test]
fn weight_sync_exports_the_policy_and_asks_the_server_to_reload() {
    let mock = serve(Box::new(|k, _, _| match k {
        0 => (200, "{\"success\": true}".into()),
        _ => (500, "out of memory".into()),
    }));
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("sync/current");
    let s = OpenAi {
        sync: Some(foil_samplers::openai::WeightSync {
            dir: dir.clone(),
            reload_url: format!("{}/update_weights_from_disk", mock.url),
            every: 2,
            ..Default::default()
        }),
        ..sampler(&mock.url)
    };
    let policy = hf_policy();
    // every 2: step 0 (the first update) does nothing, step 1 syncs
    assert!(s.sync_weights(policy.as_ref(), 0).unwrap().is_empty());
    assert!(!dir.exists());
    let m = s.sync_weights(policy.as_ref(), 1).unwrap();
    let names: Vec<&str> = m.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, vec!["sync_export_s", "sync_mb", "sync_reload_s"]);
    assert!(m[1].1 > 0.0, "exported bytes: {m:?}");
    assert!(dir.join("config.json").exists());
    assert!(dir.join("model.safetensors").exists());
    let log = mock.log.lock().unwrap().clone();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].0, "/v1/update_weights_from_disk");
    let abs = std::fs::canonicalize(&dir).unwrap();
    assert_eq!(log[0].1, json!({"model_path": abs.to_string_lossy()}));
    // the exported directory loads back as a policy
    let back: foil_models::hf::policy::Hf = serde_json::from_value(json!({ "path": dir })).unwrap();
    back.build(128, &parse_device("cpu").unwrap(), 0).unwrap();
    // a failed reload is an error naming the route and the answer; the export stays
    let e = format!("{:#}", s.sync_weights(policy.as_ref(), 3).unwrap_err());
    assert!(e.contains("HTTP 500") && e.contains("out of memory"), "{e}");
    assert!(dir.join("model.safetensors").exists());
    // a policy that cannot be exported is a clear error
    let (_, task) = setup();
    let tiny = TinyGpt {
        d_model: 16,
        layers: 1,
        heads: 2,
        context: 16,
        mlp_ratio: 2,
        init_seed: 0,
        precision: Default::default(),
    }
    .build(
        task.tokenizer.vocab_size(),
        &parse_device("cpu").unwrap(),
        0,
    )
    .unwrap();
    let e = format!("{:#}", s.sync_weights(tiny.as_ref(), 1).unwrap_err());
    assert!(e.contains("exporting the policy"), "{e}");
}
