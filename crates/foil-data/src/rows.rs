//! Records from data files and the field mapping that turns one into a [`Problem`].
//!
//! Shared by the `jsonl` and `parquet` tasks (and usable by any reader of JSONL records,
//! e.g. preference pairs): a record is a JSON object with a location (`FILE line N` or
//! `FILE row N`, 1-based) that every error about it names.
//!
//! **Field mapping** (every field of [`FieldMap`] is a recipe field of both tasks):
//!
//! ```text
//! prompt   = render(template, record)        if template is set, else record[prompt_field]
//! answer   = extract(render(answer_template, record))   if answer_template is set,
//!            else extract(record[answer_field])   answer_extract: field | gsm8k_hash | boxed | last_number
//! solution = render(solution_template, rec)  if set, else record[solution_field] if set,
//!            else record[answer_field] as written (GSM8K's worked answer)
//! id       = record[id_field] if set, else "FILE:LINE"
//! difficulty = the last integer of record[difficulty_field] ("Level 5" → 5), else 0
//! ```
//!
//! Templates are [`minijinja`] (Jinja2) templates over the record's fields, with strict
//! undefined variables, so `{{ questoin }}` is an error naming the record, not an empty
//! string. Numbers and booleans are written as JSON writes them; arrays and objects in a
//! plain `*_field` are an error (use a template, e.g. `{{ responses[0] }}`).

use std::path::Path;

use anyhow::{Context, bail, ensure};
use foil_core::Problem;
use minijinja::{Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One record and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// `FILE line N` (JSONL) or `FILE row N` (Parquet), 1-based.
    pub location: String,
    /// The file's stem and the 1-based line/row, for default ids (`gsm8k_sample:3`).
    pub short: String,
    pub fields: Map<String, Value>,
}

/// What a reader produced: the records and how many bad ones were skipped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Records {
    pub records: Vec<Record>,
    /// Non-blank lines (JSONL) or rows (Parquet) looked at.
    pub seen: usize,
    /// Bad ones skipped (`skip_bad_lines`).
    pub skipped: usize,
}

/// Handles one bad record: an error naming it, or (with `skip`) a count.
pub fn bad(
    skip: bool,
    skipped: &mut usize,
    location: &str,
    e: anyhow::Error,
) -> anyhow::Result<()> {
    if skip {
        *skipped += 1;
        Ok(())
    } else {
        Err(e.context(format!(
            "{location}: bad record (set skip_bad_lines: true to skip such lines)"
        )))
    }
}

/// Calls `f(line_number, text)` for every non-blank line of a JSONL file (1-based line
/// numbers); an error from `f` is reported as `FILE line N: …` or, with `skip`, counted.
/// Stops after `limit` accepted lines when `limit > 0`. Returns (lines seen, skipped).
pub fn for_each_jsonl_line(
    path: &Path,
    skip: bool,
    limit: usize,
    mut f: impl FnMut(usize, &str) -> anyhow::Result<()>,
) -> anyhow::Result<(usize, usize)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let (mut seen, mut skipped, mut taken) = (0, 0, 0);
    for (k, line) in text.lines().enumerate() {
        if limit > 0 && taken == limit {
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        seen += 1;
        match f(k + 1, line) {
            Ok(()) => taken += 1,
            Err(e) => bad(
                skip,
                &mut skipped,
                &format!("{} line {}", path.display(), k + 1),
                e,
            )?,
        }
    }
    Ok((seen, skipped))
}

/// The file stem that short record ids start with (`STEM:N`).
pub(crate) fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Reads a JSONL file of objects. `check` runs on every record (a mapping to a problem);
/// its errors, like a line that is not a JSON object, name the file and line.
pub fn read_jsonl(
    path: &Path,
    skip: bool,
    limit: usize,
    mut check: impl FnMut(&Record) -> anyhow::Result<()>,
) -> anyhow::Result<Records> {
    let mut records = Vec::new();
    let s = stem(path);
    let (seen, skipped) = for_each_jsonl_line(path, skip, limit, |n, line| {
        let v: Value = serde_json::from_str(line).context("not valid JSON")?;
        let Value::Object(fields) = v else {
            bail!("expected a JSON object, got {}", kind(&v));
        };
        let r = Record {
            location: format!("{} line {n}", path.display()),
            short: format!("{s}:{n}"),
            fields,
        };
        check(&r)?;
        records.push(r);
        Ok(())
    })?;
    Ok(Records {
        records,
        seen,
        skipped,
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// How the final answer is read from the answer field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerExtract {
    /// The field as written, trimmed.
    #[default]
    Field,
    /// GSM8K: the text after the last `####`, trimmed, thousands commas removed
    /// (`"… so 1,200 in all.\n#### 1,200"` → `1200`).
    Gsm8kHash,
    /// MATH: the contents of the last `\boxed{…}` (braces matched), trimmed.
    Boxed,
    /// The last integer in the field (optional `-`, commas inside digits removed).
    LastNumber,
}

/// Applies an [`AnswerExtract`] rule to a field's text.
pub fn extract_answer(rule: AnswerExtract, text: &str) -> anyhow::Result<String> {
    let out = match rule {
        AnswerExtract::Field => text.trim().to_string(),
        AnswerExtract::Gsm8kHash => {
            let at = text.rfind("####").context("no \"####\" in the answer")?;
            text[at + 4..].trim().replace(',', "")
        }
        AnswerExtract::Boxed => boxed(text).context("no \\boxed{…} in the answer")?,
        AnswerExtract::LastNumber => last_number(text).context("no number in the answer")?,
    };
    ensure!(!out.is_empty(), "the extracted answer is empty");
    Ok(out)
}

/// The contents of the last `\boxed{…}` (nested braces matched), trimmed.
pub fn boxed(text: &str) -> Option<String> {
    let at = text.rfind("\\boxed{")? + "\\boxed{".len();
    let mut depth = 1usize;
    for (i, c) in text[at..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(text[at..at + i].trim().to_string());
                }
            }
            _ => {}
        }
    }
    None
}

/// The last integer in `text` (`-` kept, commas between digits dropped: `1,200` → `1200`).
pub fn last_number(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let end = chars.iter().rposition(|c| c.is_ascii_digit())? + 1;
    let mut start = end;
    while start > 0
        && (chars[start - 1].is_ascii_digit()
            || (chars[start - 1] == ',' && start >= 2 && chars[start - 2].is_ascii_digit()))
    {
        start -= 1;
    }
    let neg = start > 0 && chars[start - 1] == '-';
    let digits: String = chars[start..end].iter().filter(|c| **c != ',').collect();
    Some(if neg { format!("-{digits}") } else { digits })
}

/// The field mapping of the dataset tasks (see the module docs). Defaults fit GSM8K.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FieldMap {
    pub prompt_field: String,
    /// A minijinja template for the prompt over the record's fields (overrides
    /// `prompt_field` when non-empty).
    pub template: String,
    /// Empty: problems have no answer (SFT only; every verdict is wrong).
    pub answer_field: String,
    /// A minijinja template for the answer over the record's fields (overrides
    /// `answer_field` when non-empty), e.g. reasoning-gym countdown's
    /// `{{ metadata.numbers | join(",") }}={{ metadata.target }}`; `answer_extract` applies
    /// to its output.
    pub answer_template: String,
    pub answer_extract: AnswerExtract,
    pub solution_field: String,
    pub solution_template: String,
    pub id_field: String,
    pub difficulty_field: String,
}

impl Default for FieldMap {
    fn default() -> Self {
        Self {
            prompt_field: "question".into(),
            template: String::new(),
            answer_field: "answer".into(),
            answer_template: String::new(),
            answer_extract: AnswerExtract::Gsm8kHash,
            solution_field: String::new(),
            solution_template: String::new(),
            id_field: String::new(),
            difficulty_field: String::new(),
        }
    }
}

/// A [`FieldMap`] with its templates compiled.
pub struct Mapper {
    map: FieldMap,
    env: Environment<'static>,
}

impl std::fmt::Debug for Mapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapper").field("map", &self.map).finish()
    }
}

impl Mapper {
    /// Compiles the templates (a syntax error names the field it is in).
    pub fn new(map: &FieldMap) -> anyhow::Result<Self> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        for (name, t) in [
            ("template", &map.template),
            ("answer_template", &map.answer_template),
            ("solution_template", &map.solution_template),
        ] {
            if !t.is_empty() {
                env.add_template_owned(name.to_string(), t.clone())
                    .map_err(|e| anyhow::anyhow!("{name}: {e:#}"))?;
            }
        }
        ensure!(
            !map.template.is_empty() || !map.prompt_field.is_empty(),
            "set prompt_field or template"
        );
        Ok(Self {
            map: map.clone(),
            env,
        })
    }

    fn render(&self, name: &str, r: &Record) -> anyhow::Result<String> {
        let t = self.env.get_template(name)?;
        t.render(minijinja::Value::from_serialize(&r.fields))
            .map_err(|e| anyhow::anyhow!("{name}: {e:#}"))
    }

    /// The problem a record maps to (errors name the field; the caller adds the location).
    pub fn problem(&self, r: &Record) -> anyhow::Result<Problem> {
        let m = &self.map;
        let prompt = if m.template.is_empty() {
            text_field(r, &m.prompt_field)?
        } else {
            self.render("template", r)?
        };
        ensure!(!prompt.trim().is_empty(), "the prompt is empty");
        let (answer, raw_answer) = if !m.answer_template.is_empty() {
            let raw = self.render("answer_template", r)?;
            let a = extract_answer(m.answer_extract, &raw).context("answer_template")?;
            (a, raw)
        } else if m.answer_field.is_empty() {
            (String::new(), String::new())
        } else {
            let raw = text_field(r, &m.answer_field)?;
            let a = extract_answer(m.answer_extract, &raw)
                .with_context(|| format!("field {:?}", m.answer_field))?;
            (a, raw)
        };
        let solution = if !m.solution_template.is_empty() {
            self.render("solution_template", r)?
        } else if !m.solution_field.is_empty() {
            text_field(r, &m.solution_field)?
        } else {
            raw_answer.trim().to_string()
        };
        let id = if m.id_field.is_empty() {
            r.short.clone()
        } else {
            text_field(r, &m.id_field)?
        };
        let difficulty = if m.difficulty_field.is_empty() {
            0
        } else {
            let d = text_field(r, &m.difficulty_field)?;
            last_number(&d)
                .and_then(|n| n.parse::<u32>().ok())
                .with_context(|| {
                    format!(
                        "field {:?}: {d:?} holds no non-negative integer",
                        m.difficulty_field
                    )
                })?
        };
        Ok(Problem {
            id,
            prompt,
            solution,
            answer,
            difficulty,
        })
    }
}

/// A field as text: strings as they are, numbers and booleans as JSON writes them.
fn text_field(r: &Record, name: &str) -> anyhow::Result<String> {
    match r.fields.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(v.to_string()),
        Some(v) => bail!(
            "field {name:?} is {}, not text (use a template to pick from it)",
            kind(v)
        ),
        None => {
            let have: Vec<&str> = r.fields.keys().map(String::as_str).collect();
            bail!("no field {name:?} (the record has {})", have.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(v: Value) -> Record {
        let Value::Object(fields) = v else { panic!() };
        Record {
            location: "f.jsonl line 1".into(),
            short: "f:1".into(),
            fields,
        }
    }

    #[test]
    fn answer_rules_by_hand() {
        let g = "She sells 3 * 400 = <<3*400=1200>>1,200 cups.\n#### 1,200";
        assert_eq!(extract_answer(AnswerExtract::Gsm8kHash, g).unwrap(), "1200");
        // the last "####" counts
        assert_eq!(
            extract_answer(AnswerExtract::Gsm8kHash, "#### 1 then #### 7 ").unwrap(),
            "7"
        );
        assert!(extract_answer(AnswerExtract::Gsm8kHash, "no marker 5").is_err());
        assert_eq!(
            extract_answer(
                AnswerExtract::Boxed,
                r"so $\boxed{1}$, no: $\boxed{\frac{1}{2}}$."
            )
            .unwrap(),
            r"\frac{1}{2}"
        );
        assert!(extract_answer(AnswerExtract::Boxed, r"\boxed{unclosed").is_err());
        assert_eq!(
            extract_answer(AnswerExtract::LastNumber, "owes -1,250 dollars, x").unwrap(),
            "-1250"
        );
        // a comma not between digits ends the number: "3, 4" → 4
        assert_eq!(last_number("3, 4").unwrap(), "4");
        assert_eq!(
            extract_answer(AnswerExtract::Field, "  \\frac{1}{2} ").unwrap(),
            r"\frac{1}{2}"
        );
        assert!(extract_answer(AnswerExtract::Field, "   ").is_err());
    }

    #[test]
    fn gsm8k_mapping_with_a_template() {
        let m = Mapper::new(&FieldMap {
            template: "Question: {{ question }}\nAnswer:".into(),
            ..Default::default()
        })
        .unwrap();
        let p = m
            .problem(&rec(serde_json::json!({
                "question": "2 and 3?", "answer": "2 + 3 = 5\n#### 5"
            })))
            .unwrap();
        assert_eq!(p.prompt, "Question: 2 and 3?\nAnswer:");
        assert_eq!(p.answer, "5");
        assert_eq!(p.solution, "2 + 3 = 5\n#### 5");
        assert_eq!((p.id.as_str(), p.difficulty), ("f:1", 0));
    }

    #[test]
    fn math_mapping_and_difficulty() {
        let m = Mapper::new(&FieldMap {
            prompt_field: "problem".into(),
            answer_extract: AnswerExtract::Field,
            solution_field: "solution".into(),
            id_field: "unique_id".into(),
            difficulty_field: "level".into(),
            ..Default::default()
        })
        .unwrap();
        let p = m
            .problem(&rec(serde_json::json!({
                "problem": "x?", "solution": "so $\\boxed{4}$", "answer": 4,
                "unique_id": "a/1.json", "level": "Level 3"
            })))
            .unwrap();
        assert_eq!((p.answer.as_str(), p.difficulty), ("4", 3));
        assert_eq!(
            (p.solution.as_str(), p.id.as_str()),
            ("so $\\boxed{4}$", "a/1.json")
        );
    }

    #[test]
    fn errors_name_the_field() {
        let m = Mapper::new(&FieldMap::default()).unwrap();
        let e = m
            .problem(&rec(
                serde_json::json!({"questoin": "x", "answer": "#### 1"}),
            ))
            .unwrap_err();
        assert!(
            format!("{e:#}").contains("no field \"question\" (the record has questoin, answer)"),
            "{e:#}"
        );
        let e = m
            .problem(&rec(
                serde_json::json!({"question": ["x"], "answer": "#### 1"}),
            ))
            .unwrap_err();
        assert!(format!("{e:#}").contains("is an array"), "{e:#}");
        // strict templates: a misspelt variable is an error, not an empty prompt
        let t = Mapper::new(&FieldMap {
            template: "Q: {{ questoin }}".into(),
            ..Default::default()
        })
        .unwrap();
        let e = t
            .problem(&rec(
                serde_json::json!({"question": "x", "answer": "#### 1"}),
            ))
            .unwrap_err();
        assert!(format!("{e:#}").contains("template"), "{e:#}");
        assert!(
            Mapper::new(&FieldMap {
                template: "{{ unclosed".into(),
                ..Default::default()
            })
            .is_err()
        );
    }

    #[test]
    fn a_ranking_maps_through_a_solution_template() {
        let m = Mapper::new(&FieldMap {
            prompt_field: "prompt".into(),
            answer_field: String::new(),
            solution_template: "{{ responses[0] }}".into(),
            ..Default::default()
        })
        .unwrap();
        let p = m
            .problem(&rec(
                serde_json::json!({"prompt": "Q:1+1=", "responses": ["1+1=2|A:2", "1+1=3|A:3"]}),
            ))
            .unwrap();
        assert_eq!((p.solution.as_str(), p.answer.as_str()), ("1+1=2|A:2", ""));
    }

    #[test]
    fn an_answer_template_builds_countdown_answers_from_metadata() {
        // reasoning-gym countdown: the answer the `countdown` verifier reads is
        // NUMBERS=TARGET, built from metadata; the shipped expression is the solution
        let m = Mapper::new(&FieldMap {
            answer_template: "{{ metadata.numbers | join(',') }}={{ metadata.target }}".into(),
            answer_extract: AnswerExtract::Field,
            solution_field: "answer".into(),
            ..Default::default()
        })
        .unwrap();
        let r = rec(serde_json::json!({
            "question": "Calculate 17 using all of these numbers: 3, 4, 6, 1.",
            "answer": "3 * 4 + 6 - 1",
            "metadata": {"numbers": [3, 4, 6, 1], "target": 17}
        }));
        let p = m.problem(&r).unwrap();
        assert_eq!(
            (p.answer.as_str(), p.solution.as_str()),
            ("3,4,6,1=17", "3 * 4 + 6 - 1")
        );
        // a record without the metadata the template needs: an error naming the template
        let e = m
            .problem(&rec(serde_json::json!({"question": "q", "answer": "1"})))
            .unwrap_err();
        assert!(format!("{e:#}").contains("answer_template"), "{e:#}");
    }
}
