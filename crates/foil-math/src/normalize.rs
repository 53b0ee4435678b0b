//! Normalisation of an extracted answer string before it is parsed.
//!
//! In order (each a plain string rewrite, linear in the input):
//!
//! - `$`, `\$`, `\displaystyle`, `\left`/`\right` (and `\big…`), LaTeX spacing (`\!`, `\,`,
//!   `\;`, `\:`, `\quad`, `~`, `\ `) and quotes are dropped;
//! - `\dfrac`, `\tfrac`, `\cfrac` → `\frac`; `\cdot`, `\times` → `*`; `\div` → `/`;
//!   `\le(q)`/`\ge(q)` → `<=`/`>=`; `infinity`/`inf` → `\infty`;
//! - `\text{…}`, `\textbf{…}`, `\mathrm{…}`, `\mathbf{…}`, `\mbox{…}`,
//!   `\operatorname{…}` → their content;
//! - degrees (`^\circ`, `^{\circ}`, `\circ`, `°`, `\degree`) are dropped;
//! - percent (`\%`, `%`, `percent`, `percentage`, `pct`) → `%`;
//! - a unit word at the end (`5 cm`, `12 apples`, `3 hours`: math-verify's list) is
//!   dropped;
//! - thousands separators: a number whose digits come in groups of 3 separated by `,` or
//!   `{,}` (`1,234,567.5`) loses them (space-separated groups only in plain text, see
//!   [`crate::extract`]);
//! - a trailing `.` and surrounding whitespace are dropped; `and`/`or` between items →
//!   `,`.

use std::sync::LazyLock;

use regex::Regex;

static TEXT_CMD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\\(?:text(?:normal|bf|it|rm)?|math(?:rm|bf|it|sf|tt)|mbox|operatorname)\s*\{([^{}]*)\}",
    )
    .expect("valid regex")
});
static DEGREES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|°|\\degree|\^\s*\{\s*\}")
        .expect("valid regex")
});
static PERCENT_WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\s*\\?%|\s*\b(?:percentage|percent|pct)\b").expect("valid regex")
});
static SPACING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big|displaystyle)\b|\\[!,;:]|\\q?quad\b|~|\\ |\\\$|\$|[\x22']")
        .expect("valid regex")
});
static FRAC: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\\[dtc]frac").expect("valid regex"));
static THOUSANDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(-?[1-9]\d{0,2})((?:(?:,|\{,\})\d{3})+)(\.\d+)?(%?)$").expect("valid regex")
});
static AND_OR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r",?\s*\b(?:and|or)\b\s*").expect("valid regex"));
static INFINITY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\binfinity\b|\binf\b").expect("valid regex"));

/// Units dropped at the end of an answer (a subset of math-verify's list, plural `s`/`es`
/// allowed).
const UNITS: &[&str] = &[
    "feet", "foot", "ft", "inches", "inch", "in", "yard", "mile", "miles", "mph", "kmph", "kmh",
    "km", "m", "cm", "mm", "meter", "metre", "kg", "g", "gm", "lb", "pound", "ounce", "oz",
    "liter", "litre", "l", "ml", "gallon", "gal", "acre", "hectare", "sq", "square", "units",
    "unit", "degree", "deg", "day", "hour", "hr", "minute", "min", "second", "sec", "s", "week",
    "month", "year", "yr", "dollar", "cent", "rupee", "rs", "apple", "student", "people", "person",
    "men", "man", "women", "woman", "children", "child", "ticket", "toy", "coin", "tile", "edge",
    "digit", "point", "page", "book", "cookie", "marble", "egg", "am", "pm", "times", "ways",
    "way",
];

static UNIT_END: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)([\d}}%\s])\s*(?:(?:square|sq|cubic|cu)\s+)?(?:{})(?:es|s)?(?:\s*\^\s*\{{?\d\}}?|\s*\^\d)?\s*\.?\s*$",
        UNITS.join("|")
    ))
    .expect("valid regex")
});

/// Normalises an extracted answer (see the module doc). Linear in the input length.
pub fn normalize(answer: &str) -> String {
    let mut s = FRAC.replace_all(answer, r"\frac").into_owned();
    // text commands: a few passes for `\text{\textbf{x}}` (bounded)
    for _ in 0..3 {
        let next = TEXT_CMD.replace_all(&s, " $1 ").into_owned();
        if next == s {
            break;
        }
        s = next;
    }
    s = DEGREES.replace_all(&s, "").into_owned();
    s = SPACING.replace_all(&s, " ").into_owned();
    s = s
        .replace("\\cdot", "*")
        .replace("\\times", "*")
        .replace("×", "*")
        .replace("\\div", "/")
        .replace("÷", "/")
        .replace("\\leq", "<=")
        .replace("\\geq", ">=")
        .replace("\\le", "<=")
        .replace("\\ge", ">=")
        .replace("\\neq", "!=")
        .replace("−", "-");
    s = INFINITY.replace_all(&s, "\\infty").into_owned();
    s = PERCENT_WORD.replace_all(&s, "%").into_owned();
    s = s.trim().trim_end_matches('.').trim().to_string();
    // unit words at the end (twice: "5 square meters")
    for _ in 0..2 {
        let next = UNIT_END.replace(&s, "$1").trim().to_string();
        if next == s || next.is_empty() {
            break;
        }
        s = next;
    }
    s = AND_OR.replace_all(&s, ",").into_owned();
    s = s.trim().trim_end_matches('.').trim().to_string();
    s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some(c) = THOUSANDS.captures(&s) {
        let groups: String = c
            .get(2)
            .map(|g| g.as_str().chars().filter(char::is_ascii_digit).collect())
            .unwrap_or_default();
        s = format!(
            "{}{}{}{}",
            &c[1],
            groups,
            c.get(3).map_or("", |m| m.as_str()),
            &c[4]
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites() {
        assert_eq!(
            normalize(r"\left( \dfrac{1}{2} \right)"),
            r"( \frac{1}{2} )"
        );
        assert_eq!(normalize(r"30^\circ"), "30");
        assert_eq!(normalize(r"30^{\circ}"), "30");
        assert_eq!(normalize(r"50\%"), "50%");
        assert_eq!(normalize("50 percent"), "50%");
        assert_eq!(normalize(r"5\text{ cm}"), "5");
        assert_eq!(normalize("12 apples."), "12");
        assert_eq!(normalize(r"\text{yes}"), "yes");
        assert_eq!(normalize("1,234,567"), "1234567");
        assert_eq!(normalize("1{,}000.5"), "1000.5");
        // a space is a thousands separator only in plain text (see extract)
        assert_eq!(normalize("1 000"), "1 000");
        assert_eq!(normalize(r"5 \text{cm}^2"), "5");
        // a list of three numbers keeps its commas (groups are not 3 digits)
        assert_eq!(normalize("1,2,3"), "1,2,3");
        assert_eq!(normalize(r"2 \times 10^3"), "2 * 10^3");
        assert_eq!(normalize("1 and 2"), "1,2");
        assert_eq!(normalize("$\\$5$"), "5");
    }
}
