//! Recipes: YAML files that compose a run from registered parts.
//!
//! Parsing goes through `serde-saphyr` (which round-trips typetag's internally tagged
//! objects) wrapped in `serde_path_to_error`, so every error names the file, line, column
//! and the dotted field path, and a misspelt name or field lists the nearest valid ones.
//! `--set dotted.path=value` overrides are applied to the YAML tree before typing.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::backend;
use crate::error::FoilError;
use crate::parts::{PolicyConfig, Stage, Task, Transform};
use crate::registry;

/// A whole run: task, policy, and the stages to run on it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// Name of the run (`runs/<name>-<time>/`).
    pub name: String,
    /// Seed of every random stream.
    #[serde(default)]
    pub seed: u64,
    /// `cpu` (flex), `cpu-ndarray`, or `cuda[:N]` when built with `--features cuda`.
    #[serde(default = "default_device")]
    pub device: String,
    /// Where problems come from.
    pub task: Box<dyn Task>,
    /// Data transforms applied in order to the built task before the stages (VPI's
    /// poisoner and filter); none by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transforms: Vec<Box<dyn Transform>>,
    /// The model.
    pub policy: Box<dyn PolicyConfig>,
    /// Stages, run in order.
    pub stages: Vec<Box<dyn Stage>>,
    /// Checkpoint every this many steps within a stage (0: only between stages).
    #[serde(default)]
    pub checkpoint_every: usize,
}

fn default_device() -> String {
    "cpu".into()
}

impl Recipe {
    /// Reads and validates a recipe file, applying `overrides` (`a.b.0.c=value`).
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, FoilError> {
        let text = std::fs::read_to_string(path).map_err(|e| FoilError::Recipe {
            message: format!("cannot read recipe {}: {e}", path.display()),
        })?;
        Self::parse(&text, &path.display().to_string(), overrides)
    }

    /// Parses and validates recipe text; `source` names it in errors.
    pub fn parse(text: &str, source: &str, overrides: &[String]) -> Result<Self, FoilError> {
        let (text, source) = if overrides.is_empty() {
            (text.to_string(), source.to_string())
        } else {
            (
                apply_overrides(text, source, overrides)?,
                format!("{source} (after --set {})", overrides.join(" --set ")),
            )
        };
        let recipe = parse_located::<Recipe>(&text, &source)?;
        if let Err(e) = backend::parse_device(&recipe.device) {
            let (line, col) = locate_key(&text, "device").unwrap_or((1, 1));
            return Err(FoilError::Recipe {
                message: format!("{source}:{line}:{col}: field `device`: {e}"),
            });
        }
        if recipe.stages.is_empty() {
            let (line, col) = locate_key(&text, "stages").unwrap_or((1, 1));
            return Err(FoilError::Recipe {
                message: format!(
                    "{source}:{line}:{col}: field `stages`: a recipe needs at least one stage"
                ),
            });
        }
        Ok(recipe)
    }

    /// The recipe as YAML (what a run saves as `recipe.yaml`).
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(self).unwrap_or_else(|e| format!("# cannot serialise: {e}\n"))
    }
}

/// Deserialises `text` as `T`, turning any failure into a located [`FoilError::Recipe`].
pub fn parse_located<T: serde::de::DeserializeOwned>(
    text: &str,
    source: &str,
) -> Result<T, FoilError> {
    let mut path = String::new();
    let result = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    });
    result.map_err(|e| {
        let (raw, inner_at) = innermost_message(&e);
        let (line, col) = inner_at
            .or_else(|| {
                e.location()
                    .map(|l| (l.line() as usize, l.column() as usize))
            })
            .unwrap_or((1, 1));
        let path = path.trim_end_matches(".?").trim_end_matches('?');
        let mut message = format!("{source}:{line}:{col}: ");
        if !path.is_empty() && path != "." {
            message.push_str(&format!("field `{path}`: "));
        }
        message.push_str(&raw);
        if let Some(hint) = suggestion(&raw) {
            message.push_str(&format!("\n  help: {hint}"));
        }
        if let Some(snippet) = snippet(text, line, col) {
            message.push('\n');
            message.push_str(&snippet);
        }
        FoilError::Recipe { message }
    })
}

/// The serde message without saphyr's location decorations, and the first location it
/// appends (`… at line L, column C`): the innermost one, pointing at the offending value.
fn innermost_message(e: &serde_saphyr::Error) -> (String, Option<(usize, usize)>) {
    let full = e.to_string();
    let mut s = full.lines().next().unwrap_or("").trim().to_string();
    if let Some(rest) = s.strip_prefix("error: ") {
        s = rest.to_string();
    }
    if s.starts_with("line ")
        && let Some(i) = s.find(": ")
    {
        s = s[i + 2..].to_string();
    }
    let mut at = None;
    while let Some(i) = s.rfind(" at line ") {
        let tail = &s[i + " at line ".len()..];
        let mut nums = tail.split(", column ");
        let line = nums.next().and_then(|l| l.trim().parse::<usize>().ok());
        let col = nums.next().and_then(|c| c.trim().parse::<usize>().ok());
        match (line, col) {
            (Some(l), Some(c)) => {
                // the loop walks from the outermost (last) to the innermost (first)
                at = Some((l, c));
                s.truncate(i);
            }
            _ => break,
        }
    }
    (s, at)
}

/// "did you mean …" for serde's `unknown variant` / `unknown field` messages.
fn suggestion(message: &str) -> Option<String> {
    let (what, rest) = if let Some(r) = message.split("unknown variant `").nth(1) {
        ("registered names", r)
    } else if let Some(r) = message.split("unknown field `").nth(1) {
        ("fields", r)
    } else {
        return None;
    };
    let given = rest.split('`').next()?;
    let expected = rest.split("expected one of ").nth(1)?;
    let candidates: Vec<&str> = expected
        .split(',')
        .map(|c| c.trim().trim_matches('`').trim())
        .filter(|c| !c.is_empty())
        .collect();
    let near = registry::nearest(given, &candidates);
    if near.is_empty() {
        Some(format!("the {what} are: {}", candidates.join(", ")))
    } else {
        Some(format!(
            "did you mean {}? (`foil list` shows every registered name)",
            near.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        ))
    }
}

/// Two lines of context around `line` with a caret under `col`.
fn snippet(text: &str, line: usize, col: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let idx = line.checked_sub(1)?;
    let target = lines.get(idx)?;
    let mut out = String::new();
    let from = idx.saturating_sub(1);
    for (i, l) in lines.iter().enumerate().take(idx).skip(from) {
        out.push_str(&format!("{:>4} | {l}\n", i + 1));
    }
    out.push_str(&format!("{:>4} | {target}\n", line));
    out.push_str(&format!("     | {}^", " ".repeat(col.saturating_sub(1))));
    Some(out)
}

/// Line and column (1-based) of the first `key:` in `text`.
fn locate_key(text: &str, key: &str) -> Option<(usize, usize)> {
    text.lines().enumerate().find_map(|(i, l)| {
        let t = l
            .trim_start()
            .trim_start_matches("- ")
            .trim_start_matches('{');
        t.starts_with(&format!("{key}:"))
            .then(|| (i + 1, l.find(key).unwrap_or(0) + 1))
    })
}

/// Applies `a.b.0.c=value` overrides to the YAML tree and renders it back to YAML.
pub fn apply_overrides(
    text: &str,
    source: &str,
    overrides: &[String],
) -> Result<String, FoilError> {
    let mut tree: Value = parse_located(text, source)?;
    for o in overrides {
        let bad = |why: String| FoilError::Recipe {
            message: format!("--set {o}: {why}"),
        };
        let (path, raw) = o
            .split_once('=')
            .ok_or_else(|| bad("expected dotted.path=value".into()))?;
        let value: Value = serde_saphyr::from_str(raw).map_err(|e| bad(format!("value: {e}")))?;
        let mut node = &mut tree;
        let keys: Vec<&str> = path.split('.').collect();
        for (depth, key) in keys.iter().enumerate() {
            let last = depth + 1 == keys.len();
            node = match node {
                Value::Array(items) => {
                    let i: usize = key
                        .parse()
                        .map_err(|_| bad(format!("`{key}` is not an index into a list")))?;
                    let len = items.len();
                    items.get_mut(i).ok_or_else(|| {
                        bad(format!("index {i} out of range (the list has {len})"))
                    })?
                }
                Value::Object(map) => {
                    if last || map.contains_key(*key) {
                        map.entry(key.to_string()).or_insert(Value::Null)
                    } else {
                        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
                        let near = registry::nearest(key, &keys);
                        return Err(bad(format!(
                            "no field `{key}` here; it has {}{}",
                            keys.join(", "),
                            near.first()
                                .map(|n| format!(" (did you mean `{n}`?)"))
                                .unwrap_or_default()
                        )));
                    }
                }
                _ => return Err(bad(format!("`{key}` goes into a scalar"))),
            };
        }
        *node = value;
    }
    serde_saphyr::to_string(&tree).map_err(|e| FoilError::Recipe {
        message: format!("re-rendering {source} after --set: {e}"),
    })
}
