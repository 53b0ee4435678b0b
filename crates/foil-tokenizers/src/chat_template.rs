//! Chat templates: the Jinja programs of Hugging Face tokenizers that turn a conversation
//! into the text an instruct model was trained on.
//!
//! Rendered with `minijinja`, set up to give templates what transformers gives them
//! (`transformers/utils/chat_template_utils.py`, `_compile_jinja_template` and
//! `render_jinja_template`):
//!
//! - `trim_blocks` and `lstrip_blocks` on, a single trailing newline dropped (jinja2's
//!   default `keep_trailing_newline=False`);
//! - variables `messages`, `add_generation_prompt`, `bos_token`, `eos_token` (when the
//!   tokenizer has them), and `tools` = `documents` = `none`;
//! - `raise_exception(msg)` (an error), `strftime_now(fmt)` (local time, or a pinned one:
//!   [`ChatTemplate::with_now`]), `namespace`, `dict`;
//! - a `tojson` filter that writes like Python's `json.dumps(x, ensure_ascii=False)` with
//!   its `indent`, `separators`, `sort_keys` and `ensure_ascii` arguments (transformers
//!   replaces jinja's HTML-escaping one the same way);
//! - Python's string, list and dict methods (`.strip()`, `.startswith()`, `.split()`,
//!   `.items()`, …) from `minijinja-contrib`'s `pycompat`.
//!
//! Not supported: the `{% generation %}` block of transformers' assistant-token masks
//! (a template using it fails to compile here).

use std::fmt::Write as _;

use anyhow::anyhow;
use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Value, context};
use serde::{Deserialize, Serialize};

/// The name the template has inside its environment (and in error messages).
const NAME: &str = "chat_template";

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The turn's text.
    pub content: String,
}

impl ChatMessage {
    /// A message with `role` and `content`.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// The error `raise_exception` carries, so that rendering can say the template raised it.
#[derive(Debug)]
struct Raised;

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("raised by the template")
    }
}

impl std::error::Error for Raised {}

/// A compiled chat template with the special tokens it may print.
#[derive(Clone)]
pub struct ChatTemplate {
    env: Environment<'static>,
    source: String,
    bos_token: Option<String>,
    eos_token: Option<String>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("source_chars", &self.source.len())
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .finish()
    }
}

impl ChatTemplate {
    /// Compiles `source`. `bos_token` and `eos_token` are the strings templates print as
    /// `{{ bos_token }}` and `{{ eos_token }}` (left undefined when `None`, as transformers
    /// leaves a tokenizer's missing special tokens). Syntax errors name the template line.
    pub fn new(
        source: impl Into<String>,
        bos_token: Option<&str>,
        eos_token: Option<&str>,
    ) -> anyhow::Result<Self> {
        let source = source.into();
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(false);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", |fmt: String| {
            strftime(&chrono::Local::now().naive_local(), &fmt)
        });
        env.add_filter("tojson", tojson);
        env.add_template_owned(NAME, source.clone())
            .map_err(|e| describe(&e, "compiling"))?;
        Ok(Self {
            env,
            source,
            bos_token: bos_token.map(str::to_string),
            eos_token: eos_token.map(str::to_string),
        })
    }

    /// Pins what `strftime_now` returns, so that renders do not depend on the day they run
    /// (Llama 3.2's template prints today's date).
    pub fn with_now(mut self, now: chrono::NaiveDateTime) -> Self {
        self.env
            .add_function("strftime_now", move |fmt: String| strftime(&now, &fmt));
        self
    }

    /// The template's source text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Renders `messages`; with `add_generation_prompt` the text ends with the header
    /// that opens the assistant's turn. Errors name the template line; an error from
    /// the template's own `raise_exception` says so and carries its message.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> anyhow::Result<String> {
        let template = self.env.get_template(NAME).expect("added in new");
        let ctx = context! {
            messages => Value::from_serialize(messages),
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos_token.as_deref().map_or(Value::UNDEFINED, Value::from),
            eos_token => self.eos_token.as_deref().map_or(Value::UNDEFINED, Value::from),
            tools => Value::from(()),
            documents => Value::from(()),
        };
        template.render(ctx).map_err(|e| describe(&e, "rendering"))
    }
}

/// `raise_exception(msg)`: fails the render with `msg`.
fn raise_exception(msg: String) -> Result<Value, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, msg).with_source(Raised))
}

/// A minijinja error as one line naming the template line, with the template's own
/// message for `raise_exception`.
fn describe(e: &Error, doing: &str) -> anyhow::Error {
    // The innermost error is the one with the line of the offending statement.
    let mut inner: &Error = e;
    while let Some(next) = std::error::Error::source(inner).and_then(|s| s.downcast_ref::<Error>())
    {
        inner = next;
    }
    let raised = std::error::Error::source(inner).is_some_and(|s| s.is::<Raised>());
    let line = inner
        .line()
        .or(e.line())
        .map_or(String::new(), |l| format!(" at line {l}"));
    if raised {
        anyhow!(
            "the chat template raised an exception{line}: {}",
            inner.detail().unwrap_or_default()
        )
    } else {
        let detail = inner.detail().map_or(String::new(), |d| format!(": {d}"));
        anyhow!(
            "chat template error{line} while {doing}: {}{detail}",
            inner.kind()
        )
    }
}

/// Python's `datetime.strftime` for the formats chat templates use (`%d %b %Y`, …).
fn strftime(now: &chrono::NaiveDateTime, fmt: &str) -> Result<Value, Error> {
    use chrono::format::{Item, StrftimeItems};
    let items: Vec<Item> = StrftimeItems::new(fmt).collect();
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("strftime_now: unsupported format {fmt:?}"),
        ));
    }
    let mut out = String::new();
    write!(out, "{}", now.format_with_items(items.into_iter())).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("strftime_now: cannot format {fmt:?}"),
        )
    })?;
    Ok(Value::from(out))
}

/// The `tojson` filter: Python's `json.dumps(value, ensure_ascii=False, indent=None,
/// separators=None, sort_keys=False)`, as transformers defines it.
fn tojson(value: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    let indent: Option<Value> = kwargs.get("indent")?;
    let separators: Option<Value> = kwargs.get("separators")?;
    kwargs.assert_all_used()?;
    let indent = match indent {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => match v.kind() {
            ValueKind::Number => Some(" ".repeat(v.as_i64().unwrap_or(0).max(0) as usize)),
            ValueKind::String => Some(v.as_str().unwrap_or_default().to_string()),
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    "tojson: indent must be a number or a string",
                ));
            }
        },
    };
    let (item_sep, key_sep) = match separators {
        Some(v) if !v.is_none() => {
            let parts: Vec<Value> = v.try_iter()?.collect();
            match parts.as_slice() {
                [a, b] => (a.to_string(), b.to_string()),
                _ => {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        "tojson: separators must be a pair",
                    ));
                }
            }
        }
        _ => (
            if indent.is_some() { "," } else { ", " }.to_string(),
            ": ".to_string(),
        ),
    };
    let opts = JsonOpts {
        ensure_ascii: ensure_ascii.unwrap_or(false),
        sort_keys: sort_keys.unwrap_or(false),
        indent,
        item_sep,
        key_sep,
    };
    let mut out = String::new();
    dump(&value, &opts, 0, &mut out)?;
    Ok(Value::from(out))
}

struct JsonOpts {
    ensure_ascii: bool,
    sort_keys: bool,
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
}

fn newline(opts: &JsonOpts, level: usize, out: &mut String) {
    if let Some(ind) = &opts.indent {
        out.push('\n');
        for _ in 0..level {
            out.push_str(ind);
        }
    }
}

fn dump(v: &Value, opts: &JsonOpts, level: usize, out: &mut String) -> Result<(), Error> {
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number => {
            if let Some(i) = v.as_i64() {
                if v.to_string().contains(['.', 'e', 'E', 'n', 'i']) {
                    out.push_str(&py_float(f64::try_from(v.clone()).unwrap_or(i as f64)));
                } else {
                    write!(out, "{i}").ok();
                }
            } else if let Ok(f) = f64::try_from(v.clone()) {
                out.push_str(&py_float(f));
            } else {
                out.push_str(&v.to_string());
            }
        }
        ValueKind::String => py_string(v.as_str().unwrap_or_default(), opts.ensure_ascii, out),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = v.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&opts.item_sep);
                }
                newline(opts, level + 1, out);
                dump(item, opts, level + 1, out)?;
            }
            newline(opts, level, out);
            out.push(']');
        }
        ValueKind::Map => {
            let mut keys: Vec<Value> = v.try_iter()?.collect();
            if keys.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            if opts.sort_keys {
                keys.sort();
            }
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(&opts.item_sep);
                }
                newline(opts, level + 1, out);
                match k.as_str() {
                    Some(s) => py_string(s, opts.ensure_ascii, out),
                    None => py_string(&k.to_string(), opts.ensure_ascii, out),
                }
                out.push_str(&opts.key_sep);
                dump(&v.get_item(k)?, opts, level + 1, out)?;
            }
            newline(opts, level, out);
            out.push('}');
        }
        _ => py_string(&v.to_string(), opts.ensure_ascii, out),
    }
    Ok(())
}

/// A float as Python's `repr` writes it (`1.0`, `0.5`, `1e+20`, `NaN`).
fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        // Shortest round-trip digits in exponent form, Python-style exponent.
        let s = format!("{f:e}");
        let (mant, exp) = s.split_once('e').expect("exponent form");
        let exp: i32 = exp.parse().expect("integer exponent");
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    let s = format!("{f}");
    if s.contains('.') { s } else { format!("{s}.0") }
}

/// A JSON string literal as Python's `json.dumps` writes it.
fn py_string(s: &str, ensure_ascii: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                write!(out, "\\u{:04x}", c as u32).ok();
            }
            c if ensure_ascii && (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    write!(out, "\\u{unit:04x}").ok();
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(src: &str, msgs: &[ChatMessage]) -> anyhow::Result<String> {
        ChatTemplate::new(src, Some("<s>"), Some("</s>"))?.render(msgs, true)
    }

    #[test]
    fn tojson_writes_like_python_json_dumps() {
        let t = |src: &str| render(src, &[]).unwrap();
        assert_eq!(
            t(r#"{{ {"a": [1, 2.5, "é\n"], "b": none} | tojson }}"#),
            r#"{"a": [1, 2.5, "é\n"], "b": null}"#
        );
        assert_eq!(
            t(r#"{{ {"b": 1, "a": [true]} | tojson(indent=2, sort_keys=true) }}"#),
            "{\n  \"a\": [\n    true\n  ],\n  \"b\": 1\n}"
        );
        assert_eq!(
            t(r#"{{ "é<>" | tojson(ensure_ascii=true) }}"#),
            r#""\u00e9<>""#
        );
        assert_eq!(
            t(r#"{{ [1, {}] | tojson(separators=[",", ":"]) }}"#),
            "[1,{}]"
        );
        assert_eq!(t(r#"{{ 3.0 | tojson }} {{ 1e20 | tojson }}"#), "3.0 1e+20");
    }

    #[test]
    fn python_string_methods_and_blocks() {
        let msgs = [ChatMessage::new("user", "  Hi there  ")];
        let src = "{% for m in messages %}\n  [{{ m.content.strip().upper() }}]{{ m.role.startswith('us') }}\n{% endfor %}";
        assert_eq!(render(src, &msgs).unwrap(), "  [HI THERE]True\n");
        // trim_blocks + lstrip_blocks, and the trailing newline dropped, as jinja2 in
        // transformers renders it.
        let src = "a\n    {% if true %}\nb\n    {% endif %}\nc\n";
        assert_eq!(render(src, &msgs).unwrap(), "a\nb\nc");
    }

    #[test]
    fn raise_exception_names_its_message_and_line() {
        let src = "ok\n{% if messages[0].role != 'system' %}{{ raise_exception('first message must be system') }}{% endif %}";
        let err = render(src, &[ChatMessage::new("user", "x")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "the chat template raised an exception at line 2: first message must be system"
        );
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = ChatTemplate::new("a\nb\n{% if %}", None, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("chat template error at line 3 while compiling: syntax error"),
            "{err}"
        );
    }

    #[test]
    fn strftime_now_can_be_pinned() {
        let now = chrono::NaiveDate::from_ymd_opt(2024, 7, 26)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let t = ChatTemplate::new("{{ strftime_now('%d %b %Y') }}", None, None)
            .unwrap()
            .with_now(now);
        assert_eq!(t.render(&[], false).unwrap(), "26 Jul 2024");
        assert_eq!(t.clone().render(&[], false).unwrap(), "26 Jul 2024");
    }

    #[test]
    fn missing_special_tokens_are_undefined() {
        let t = ChatTemplate::new(
            "{% if bos_token is defined %}B{% endif %}{{ eos_token }}|{{ tools is none }}",
            None,
            None,
        )
        .unwrap();
        assert_eq!(t.render(&[], false).unwrap(), "|True");
    }
}
