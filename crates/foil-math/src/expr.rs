//! A small LaTeX/plain-math expression parser and evaluator.
//!
//! Grammar (recursive descent, implicit multiplication by juxtaposition):
//!
//! ```text
//! sum     := product (('+' | '-') product)*
//! product := unary (('*' | '/') unary | unary)*          (juxtaposition multiplies)
//! unary   := ('-' | '+') unary | power
//! power   := postfix ('^' unary)?                         (right-associative)
//! postfix := primary ('!' | '%')*
//! primary := number | name | '(' sum ')' | '[' sum ']' | '{' sum '}' | '|' sum '|'
//!          | \frac{a}{b} | \sqrt[n]{x} | \sqrt{x} | \sin x … | \log_b x | \pi | \infty
//! ```
//!
//! A number is digits with an optional decimal part and exponent (`1.5e3`); an integer
//! followed directly by a fraction of integers is a mixed number (`2\frac{1}{2}` = 5/2).
//! Names are single letters (with an optional subscript, `x_1`) or Greek letters.
//!
//! Bounds: at most [`MAX_TOKENS`] tokens and nesting depth [`MAX_DEPTH`]; past either the
//! parse fails (an error, never a panic or a stack overflow). Sums and products are n-ary
//! nodes, so the tree's depth is bounded by the nesting depth, and evaluation (which
//! recurses over the tree) is bounded too.

use std::collections::BTreeSet;

/// Most tokens an expression may have.
pub const MAX_TOKENS: usize = 512;
/// Deepest nesting (brackets, exponents, unary signs, function arguments).
pub const MAX_DEPTH: usize = 48;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num { value: f64, float: bool, int: bool },
    Name(String),
    Cmd(String),
    Op(char),
    Open(char),
    Close(char),
}

/// An expression tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal: its value, whether it was written with a decimal point or exponent.
    Num {
        value: f64,
        float: bool,
    },
    Var(String),
    Pi,
    Infinity,
    Neg(Box<Expr>),
    Sum(Vec<Expr>),
    Product(Vec<Expr>),
    Div(Box<Expr>, Box<Expr>),
    Pow(Box<Expr>, Box<Expr>),
    /// `x%` (= x/100).
    Percent(Box<Expr>),
    Factorial(Box<Expr>),
    Func(String, Box<Expr>),
    Log(Box<Expr>, Box<Expr>),
    Root(Box<Expr>, Box<Expr>),
}

const GREEK: &[&str] = &[
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "varepsilon",
    "zeta",
    "eta",
    "theta",
    "vartheta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "rho",
    "sigma",
    "tau",
    "phi",
    "varphi",
    "chi",
    "psi",
    "omega",
    "Gamma",
    "Delta",
    "Theta",
    "Lambda",
    "Sigma",
    "Phi",
    "Psi",
    "Omega",
];
const FUNCS: &[&str] = &[
    "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
    "ln", "exp", "log",
];

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if out.len() > MAX_TOKENS {
            return Err("too many tokens".into());
        }
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'0'..=b'9' | b'.' => {
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                let mut float = false;
                if i < b.len() && b[i] == b'.' && i + 1 < b.len() && b[i + 1].is_ascii_digit() {
                    float = true;
                    i += 1;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                } else if i == start {
                    // a lone '.'
                    return Err("stray '.'".into());
                }
                let int = !float;
                // exponent: e/E, optional sign, digits
                if i + 1 < b.len() && (b[i] == b'e' || b[i] == b'E') {
                    let mut j = i + 1;
                    if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
                        j += 1;
                    }
                    if j < b.len() && b[j].is_ascii_digit() {
                        while j < b.len() && b[j].is_ascii_digit() {
                            j += 1;
                        }
                        i = j;
                        float = true;
                    }
                }
                let text = &s[start..i];
                let value: f64 = text.parse().map_err(|_| format!("bad number {text:?}"))?;
                out.push(Tok::Num {
                    value,
                    float,
                    int: int && !float,
                });
            }
            b'\\' => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && b[j].is_ascii_alphabetic() {
                    j += 1;
                }
                if j == start {
                    // `\{`, `\}`, `\|`
                    match b.get(start) {
                        Some(b'{') => out.push(Tok::Open('{')),
                        Some(b'}') => out.push(Tok::Close('}')),
                        Some(b'|') => out.push(Tok::Op('|')),
                        _ => return Err("stray backslash".into()),
                    }
                    i = start + 1;
                } else {
                    out.push(Tok::Cmd(s[start..j].to_string()));
                    i = j;
                }
            }
            b'a'..=b'z' | b'A'..=b'Z' => {
                let mut name = (c as char).to_string();
                i += 1;
                // subscript: x_1, x_{12}
                if i < b.len() && b[i] == b'_' {
                    if i + 1 < b.len() && b[i + 1] == b'{' {
                        let close = s[i + 2..].find('}').ok_or("open subscript")?;
                        name.push('_');
                        name.push_str(&s[i + 2..i + 2 + close]);
                        i += 3 + close;
                    } else if i + 1 < b.len() && b[i + 1].is_ascii_alphanumeric() {
                        name.push('_');
                        name.push(b[i + 1] as char);
                        i += 2;
                    }
                }
                out.push(Tok::Name(name));
            }
            b'+' | b'-' | b'*' | b'/' | b'^' | b'!' | b'%' | b'|' | b'_' => {
                out.push(Tok::Op(c as char));
                i += 1;
            }
            b'(' | b'[' | b'{' => {
                out.push(Tok::Open(c as char));
                i += 1;
            }
            b')' | b']' | b'}' => {
                out.push(Tok::Close(c as char));
                i += 1;
            }
            _ => {
                let ch = s[i..].chars().next().unwrap_or('?');
                match ch {
                    'π' => out.push(Tok::Cmd("pi".into())),
                    '∞' => out.push(Tok::Cmd("infty".into())),
                    '√' => out.push(Tok::Cmd("sqrt".into())),
                    _ => return Err(format!("unexpected {ch:?}")),
                }
                i += ch.len_utf8();
            }
        }
    }
    if out.len() > MAX_TOKENS {
        return Err("too many tokens".into());
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    depth: usize,
}

fn closer(open: char) -> char {
    match open {
        '(' => ')',
        '[' => ']',
        _ => '}',
    }
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err("nested too deeply".into())
        } else {
            Ok(())
        }
    }

    fn sum(&mut self) -> Result<Expr, String> {
        self.enter()?;
        let mut terms = vec![self.product()?];
        while let Some(Tok::Op(op @ ('+' | '-'))) = self.peek() {
            let neg = *op == '-';
            self.pos += 1;
            let t = self.product()?;
            terms.push(if neg { Expr::Neg(Box::new(t)) } else { t });
        }
        self.depth -= 1;
        Ok(if terms.len() == 1 {
            terms.pop().unwrap_or(Expr::Sum(Vec::new()))
        } else {
            Expr::Sum(terms)
        })
    }

    fn starts_primary(&self) -> bool {
        match self.peek() {
            Some(Tok::Num { .. } | Tok::Name(_) | Tok::Open(_)) => true,
            Some(Tok::Cmd(c)) => c != "right",
            _ => false,
        }
    }

    fn product(&mut self) -> Result<Expr, String> {
        let mut factors = vec![self.unary()?];
        loop {
            match self.peek() {
                Some(Tok::Op('*')) => {
                    self.pos += 1;
                    factors.push(self.unary()?);
                }
                Some(Tok::Op('/')) => {
                    self.pos += 1;
                    let d = self.unary()?;
                    let n = if factors.len() == 1 {
                        factors.pop().unwrap_or(Expr::Sum(Vec::new()))
                    } else {
                        Expr::Product(std::mem::take(&mut factors))
                    };
                    factors.push(Expr::Div(Box::new(n), Box::new(d)));
                }
                _ if self.starts_primary() => {
                    let is_frac = matches!(self.peek(), Some(Tok::Cmd(c)) if c == "frac");
                    let next = self.power()?;
                    // mixed number: integer followed by a fraction of integers
                    let mixed = matches!(factors.as_slice(), [Expr::Num { float: false, value }] if *value >= 0.0)
                        && matches!(&next, Expr::Div(a, b) if matches!(**a, Expr::Num { float: false, .. }) && matches!(**b, Expr::Num { float: false, .. }))
                        && is_frac;
                    if mixed {
                        let whole = factors.pop().unwrap_or(Expr::Sum(Vec::new()));
                        factors.push(Expr::Sum(vec![whole, next]));
                    } else {
                        factors.push(next);
                    }
                }
                _ => break,
            }
        }
        Ok(if factors.len() == 1 {
            factors.pop().unwrap_or(Expr::Sum(Vec::new()))
        } else {
            Expr::Product(factors)
        })
    }

    fn unary(&mut self) -> Result<Expr, String> {
        self.enter()?;
        let e = match self.peek() {
            Some(Tok::Op('-')) => {
                self.pos += 1;
                Expr::Neg(Box::new(self.unary()?))
            }
            Some(Tok::Op('+')) => {
                self.pos += 1;
                self.unary()?
            }
            _ => self.power()?,
        };
        self.depth -= 1;
        Ok(e)
    }

    fn power(&mut self) -> Result<Expr, String> {
        let base = self.postfix()?;
        if let Some(Tok::Op('^')) = self.peek() {
            self.pos += 1;
            let exp = self.unary()?;
            return Ok(Expr::Pow(Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }

    fn postfix(&mut self) -> Result<Expr, String> {
        let mut e = self.primary()?;
        loop {
            match self.peek() {
                Some(Tok::Op('!')) => {
                    self.pos += 1;
                    e = Expr::Factorial(Box::new(e));
                }
                Some(Tok::Op('%')) => {
                    self.pos += 1;
                    e = Expr::Percent(Box::new(e));
                }
                _ => return Ok(e),
            }
        }
    }

    /// `{…}` group (a required LaTeX argument) or a single primary (`\frac12`, `\sqrt2`).
    fn argument(&mut self) -> Result<Expr, String> {
        if let Some(Tok::Open('{')) = self.peek() {
            self.pos += 1;
            let e = self.sum()?;
            self.expect('}')?;
            Ok(e)
        } else if let Some(Tok::Num { value, float, int }) = self.peek().cloned() {
            // `\frac12`: one digit per argument
            self.pos += 1;
            if int && value >= 10.0 {
                let text = format!("{value}");
                let (first, rest) = text.split_at(1);
                let a: f64 = first.parse().map_err(|_| "bad digit")?;
                let r: f64 = rest.parse().map_err(|_| "bad digit")?;
                self.toks.insert(
                    self.pos,
                    Tok::Num {
                        value: r,
                        float: false,
                        int: true,
                    },
                );
                return Ok(Expr::Num {
                    value: a,
                    float: false,
                });
            }
            Ok(Expr::Num { value, float })
        } else {
            self.primary()
        }
    }

    fn expect(&mut self, close: char) -> Result<(), String> {
        match self.next() {
            Some(Tok::Close(c)) if c == close => Ok(()),
            // `(a, b]`-style mismatches are not expressions
            other => Err(format!("expected {close:?}, got {other:?}")),
        }
    }

    fn primary(&mut self) -> Result<Expr, String> {
        self.enter()?;
        if self.toks.len() > MAX_TOKENS + 8 {
            return Err("too many tokens".into());
        }
        let e = match self.next() {
            Some(Tok::Num { value, float, .. }) => Expr::Num { value, float },
            Some(Tok::Name(n)) => Expr::Var(n),
            Some(Tok::Open(o)) => {
                let e = self.sum()?;
                self.expect(closer(o))?;
                e
            }
            Some(Tok::Op('|')) => {
                let e = self.sum()?;
                match self.next() {
                    Some(Tok::Op('|')) => Expr::Func("abs".into(), Box::new(e)),
                    _ => return Err("open |".into()),
                }
            }
            Some(Tok::Cmd(c)) => self.command(&c)?,
            other => return Err(format!("unexpected {other:?}")),
        };
        self.depth -= 1;
        Ok(e)
    }

    fn command(&mut self, c: &str) -> Result<Expr, String> {
        Ok(match c {
            "frac" => {
                let n = self.argument()?;
                let d = self.argument()?;
                Expr::Div(Box::new(n), Box::new(d))
            }
            "sqrt" => {
                let index = if let Some(Tok::Open('[')) = self.peek() {
                    self.pos += 1;
                    let e = self.sum()?;
                    self.expect(']')?;
                    e
                } else {
                    Expr::Num {
                        value: 2.0,
                        float: false,
                    }
                };
                let x = self.argument()?;
                Expr::Root(Box::new(index), Box::new(x))
            }
            "pi" => Expr::Pi,
            "infty" => Expr::Infinity,
            "log" if matches!(self.peek(), Some(Tok::Op('_'))) => {
                self.pos += 1;
                let base = self.argument()?;
                let x = self.func_arg()?;
                Expr::Log(Box::new(base), Box::new(x))
            }
            f if FUNCS.contains(&f) => {
                // `\sin^2 x` is not supported: an error rather than a wrong reading
                let x = self.func_arg()?;
                Expr::Func(f.to_string(), Box::new(x))
            }
            g if GREEK.contains(&g) => Expr::Var(g.to_string()),
            other => return Err(format!("unknown command \\{other}")),
        })
    }

    fn func_arg(&mut self) -> Result<Expr, String> {
        match self.peek() {
            Some(Tok::Open(_)) => self.primary(),
            _ => self.power(),
        }
    }
}

/// Parses one expression (no top-level commas, `=` or relations).
pub fn parse_expr(s: &str) -> Result<Expr, String> {
    let toks = tokenize(s)?;
    if toks.is_empty() {
        return Err("empty".into());
    }
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
    };
    let e = p.sum()?;
    if p.pos < p.toks.len() {
        return Err(format!("trailing {:?}", p.toks.get(p.pos)));
    }
    Ok(e)
}

impl Expr {
    /// Whether a literal with a decimal point or exponent occurs (then numbers compare
    /// after rounding, as math-verify does for floats).
    pub fn has_float(&self) -> bool {
        let mut found = false;
        self.visit(&mut |e| {
            if let Expr::Num { float: true, .. } = e {
                found = true;
            }
        });
        found
    }

    /// The free variables.
    pub fn vars(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        self.visit(&mut |e| {
            if let Expr::Var(v) = e {
                out.insert(v.clone());
            }
        });
        out
    }

    fn children(&self) -> Vec<&Expr> {
        match self {
            Expr::Num { .. } | Expr::Var(_) | Expr::Pi | Expr::Infinity => Vec::new(),
            Expr::Neg(a) | Expr::Percent(a) | Expr::Factorial(a) | Expr::Func(_, a) => vec![a],
            Expr::Sum(v) | Expr::Product(v) => v.iter().collect(),
            Expr::Div(a, b) | Expr::Pow(a, b) | Expr::Log(a, b) | Expr::Root(a, b) => {
                vec![a, b]
            }
        }
    }

    fn visit(&self, f: &mut dyn FnMut(&Expr)) {
        f(self);
        for c in self.children() {
            c.visit(f);
        }
    }

    /// The value with variables bound by `env` (unbound variables are NaN).
    pub fn eval(&self, env: &dyn Fn(&str) -> f64) -> f64 {
        match self {
            Expr::Num { value, .. } => *value,
            Expr::Var(v) => env(v),
            Expr::Pi => std::f64::consts::PI,
            Expr::Infinity => f64::INFINITY,
            Expr::Neg(a) => -a.eval(env),
            Expr::Sum(v) => v.iter().map(|e| e.eval(env)).sum(),
            Expr::Product(v) => v.iter().map(|e| e.eval(env)).product(),
            Expr::Div(a, b) => a.eval(env) / b.eval(env),
            Expr::Pow(a, b) => a.eval(env).powf(b.eval(env)),
            Expr::Percent(a) => a.eval(env) / 100.0,
            Expr::Factorial(a) => {
                let x = a.eval(env);
                if (0.0..=170.0).contains(&x) && x.fract() == 0.0 {
                    (1..=(x as u32)).map(f64::from).product()
                } else {
                    f64::NAN
                }
            }
            Expr::Log(b, x) => x.eval(env).ln() / b.eval(env).ln(),
            Expr::Root(n, x) => {
                let (n, x) = (n.eval(env), x.eval(env));
                // odd roots of negatives are real
                if x < 0.0 && n.fract() == 0.0 && (n as i64) % 2 != 0 {
                    -(-x).powf(1.0 / n)
                } else {
                    x.powf(1.0 / n)
                }
            }
            Expr::Func(f, a) => {
                let x = a.eval(env);
                match f.as_str() {
                    "sin" => x.sin(),
                    "cos" => x.cos(),
                    "tan" => x.tan(),
                    "cot" => 1.0 / x.tan(),
                    "sec" => 1.0 / x.cos(),
                    "csc" => 1.0 / x.sin(),
                    "arcsin" => x.asin(),
                    "arccos" => x.acos(),
                    "arctan" => x.atan(),
                    "sinh" => x.sinh(),
                    "cosh" => x.cosh(),
                    "tanh" => x.tanh(),
                    "ln" => x.ln(),
                    "log" => x.log10(),
                    "exp" => x.exp(),
                    "abs" => x.abs(),
                    _ => f64::NAN,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn val(s: &str) -> f64 {
        parse_expr(s).unwrap().eval(&|_| f64::NAN)
    }

    #[test]
    fn arithmetic_by_hand() {
        assert_eq!(val("1+2*3"), 7.0); // 2*3 = 6, 1 + 6 = 7
        assert_eq!(val("2^3^2"), 512.0); // right-assoc: 3^2 = 9, 2^9 = 512
        assert_eq!(val("-2^2"), -4.0); // -(2^2)
        assert_eq!(val(r"\frac{3}{4}"), 0.75);
        assert_eq!(val(r"\frac12"), 0.5); // one digit per argument
        assert_eq!(val(r"2\frac{1}{2}"), 2.5); // mixed number 2 + 1/2
        assert_eq!(val(r"2\sqrt{9}"), 6.0); // 2 * 3: not a mixed number
        assert_eq!(val(r"\sqrt[3]{-8}"), -2.0);
        assert_eq!(val("1.5e3"), 1500.0);
        assert_eq!(val("50%"), 0.5);
        assert_eq!(val("5!"), 120.0);
        assert_eq!(val("6/2/3"), 1.0); // left-assoc: (6/2)/3
        assert_eq!(val("2(3+4)"), 14.0);
        assert_eq!(val(r"\log_{2} 8"), 3.0);
        assert!(parse_expr("1.5").unwrap().has_float());
        assert!(!parse_expr("3/2").unwrap().has_float());
    }

    #[test]
    fn bounds_and_garbage_are_errors() {
        let deep = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(parse_expr(&deep).is_err());
        let long = "1+".repeat(10_000) + "1";
        assert!(parse_expr(&long).is_err());
        let pow = "2^".repeat(1000) + "2";
        assert!(parse_expr(&pow).is_err());
        for bad in [
            "",
            "(",
            ")",
            "1+",
            r"\frac{1}",
            r"\unknown",
            "\\",
            ".",
            "|1",
            "x_{",
            "é",
        ] {
            assert!(parse_expr(bad).is_err(), "{bad:?}");
        }
    }
}
