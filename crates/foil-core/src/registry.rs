//! The registry behind `foil list` and the nearest-name suggestions.
//!
//! typetag owns deserialisation by name; this registry adds what typetag does not expose:
//! every registered name per kind, a one-line summary and the fields with their defaults.
//! Each part registers with [`crate::register_part!`] next to its `#[typetag::serde]` impl.

use serde::Serialize;

/// One registered part.
pub struct PartInfo {
    /// Trait name (`Objective`, `Verifier`, …).
    pub kind: &'static str,
    /// The `type:` name in recipes.
    pub name: &'static str,
    /// One line: what it is and where it comes from.
    pub summary: &'static str,
    /// The fields and their defaults, as JSON.
    pub defaults: fn() -> serde_json::Value,
}

inventory::collect!(PartInfo);

/// Serialises `T::default()`: the fields and defaults `foil list` prints.
pub fn defaults_of<T: Default + Serialize>() -> serde_json::Value {
    serde_json::to_value(T::default()).unwrap_or(serde_json::Value::Null)
}

/// Registers a part for `foil list`: `register_part!(Objective, "ppo_clip", PpoClip, "…")`.
/// The type must implement `Default + Serialize`.
#[macro_export]
macro_rules! register_part {
    ($kind:ident, $name:literal, $ty:ty, $summary:literal) => {
        $crate::inventory::submit! {
            $crate::registry::PartInfo {
                kind: stringify!($kind),
                name: $name,
                summary: $summary,
                defaults: $crate::registry::defaults_of::<$ty>,
            }
        }
    };
}

/// Every registered part, sorted by kind then name.
pub fn parts() -> Vec<&'static PartInfo> {
    let mut v: Vec<&PartInfo> = inventory::iter::<PartInfo>.into_iter().collect();
    v.sort_by_key(|p| (p.kind, p.name));
    v
}

/// Registered names of one kind.
pub fn names_of(kind: &str) -> Vec<&'static str> {
    parts()
        .into_iter()
        .filter(|p| p.kind == kind)
        .map(|p| p.name)
        .collect()
}

/// Up to three candidates closest to `given` (Jaro–Winkler similarity ≥ 0.8),
/// best first.
pub fn nearest<'a>(given: &str, candidates: &[&'a str]) -> Vec<&'a str> {
    let mut scored: Vec<(f64, &str)> = candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(given, c), *c))
        .filter(|(s, _)| *s >= 0.8)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

/// A human-readable listing of every registered part (what `foil list` prints).
pub fn listing() -> String {
    let mut out = String::new();
    let mut kind = "";
    for p in parts() {
        if p.kind != kind {
            kind = p.kind;
            out.push_str(&format!("\n{kind}\n"));
        }
        out.push_str(&format!("  {:<22} {}\n", p.name, p.summary));
        if let serde_json::Value::Object(map) = (p.defaults)() {
            for (k, v) in map {
                if k == "type" {
                    continue;
                }
                out.push_str(&format!("      {k}: {}\n", flow(&v)));
            }
        }
    }
    out
}

/// A value in YAML flow style, printing each number at the precision it was declared with
/// (an `f32` field's `0.2` stays `0.2`, not `0.20000000298023224`).
fn flow(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(x) if n.is_f64() && (x as f32) as f64 == x => format!("{}", x as f32),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(flow).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{k}: {}", flow(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_print_at_declared_precision() {
        let v = serde_json::json!({"type": "x", "eps": 0.2f32, "k": [1, 8], "n": null, "s": {"lr": 1e-3f32}});
        assert_eq!(
            flow(&v),
            "{type: x, eps: 0.2, k: [1, 8], n: null, s: {lr: 0.001}}"
        );
    }

    #[test]
    fn nearest_finds_typos_and_ignores_strangers() {
        let names = ["grpo", "rloo", "ngrpo", "ppo_clip"];
        assert_eq!(nearest("grpoo", &names)[0], "grpo");
        assert!(nearest("zzzzzz", &names).is_empty());
    }
}
