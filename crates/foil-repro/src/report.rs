//! What a reproduction hands back: its checks, markdown sections and raw data, written as
//! `result.md` and `result.json` next to the plot.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::rules::Check;

/// The outcome of one reproduction.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `psr_nsr`, …
    pub name: String,
    /// The claim in one sentence, with the paper.
    pub claim: String,
    /// The command that produced it.
    pub command: String,
    pub quick: bool,
    pub seeds: Vec<u64>,
    /// Markdown sections (tables, notes), in order.
    pub sections: Vec<String>,
    pub checks: Vec<Check>,
    /// The PNG, if one was drawn.
    pub plot: Option<PathBuf>,
    /// Wall time of the whole reproduction in seconds.
    pub wall_s: f64,
    /// Raw numbers (per arm, per seed), for `result.json`.
    pub data: serde_json::Value,
}

impl Report {
    /// The claim (or, for `--quick`, what it checks) holds when every gating check does
    /// and there is at least one.
    pub fn holds(&self) -> bool {
        let mut gating = self.checks.iter().filter(|c| c.gating).peekable();
        gating.peek().is_some() && gating.all(|c| c.holds)
    }

    /// The table of checks.
    pub fn checks_table(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .checks
            .iter()
            .map(|c| {
                vec![
                    c.claim.clone(),
                    c.rule.clone(),
                    format!(
                        "{} ({})",
                        c.values.signed_mean_std(),
                        c.values.signed_per_seed()
                    ),
                    format!(
                        "{}{}",
                        if c.holds {
                            "holds"
                        } else {
                            "**does not hold**"
                        },
                        if c.gating {
                            ""
                        } else {
                            " (reported, not gating)"
                        }
                    ),
                ]
            })
            .collect();
        md_table(
            &["check", "rule", "values: mean ± std (per seed)", "result"],
            &rows,
        )
    }

    /// The whole report as markdown.
    pub fn markdown(&self) -> String {
        let gating: Vec<_> = self.checks.iter().filter(|c| c.gating).collect();
        let reported: Vec<_> = self.checks.iter().filter(|c| !c.gating).collect();
        let held = gating.iter().filter(|c| c.holds).count();
        let mut s = format!(
            "# `{}`{}\n\n**Claim.** {}\n\n`{}` — seeds {}, {:.0} s wall time.\n\n",
            self.name,
            if self.quick { " (quick)" } else { "" },
            self.claim,
            self.command,
            self.seeds
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            self.wall_s
        );
        for section in &self.sections {
            s.push_str(section.trim_end());
            s.push_str("\n\n");
        }
        s.push_str("## Checks\n\n");
        s.push_str(&self.checks_table());
        let verdict = match (self.quick, self.holds()) {
            (false, true) => "The claim holds",
            (false, false) => "The claim does not hold",
            (true, true) => "The --quick checks hold",
            (true, false) => "The --quick checks do not hold",
        };
        s.push_str(&format!(
            "\n\n**{verdict}**: {held} of {} gating checks hold",
            gating.len()
        ));
        if !reported.is_empty() {
            s.push_str(&format!(
                "; reported only: {} of {} hold",
                reported.iter().filter(|c| c.holds).count(),
                reported.len()
            ));
        }
        s.push_str(".\n");
        if let Some(p) = &self.plot {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            s.push_str(&format!("\n![{}]({name})\n", self.name));
        }
        s
    }

    /// Writes `result.md` and `result.json` into `dir`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("result.md"), self.markdown())?;
        let mut v = serde_json::to_value(self)?;
        v["holds"] = serde_json::Value::Bool(self.holds());
        std::fs::write(dir.join("result.json"), serde_json::to_vec_pretty(&v)?)?;
        Ok(())
    }
}

/// A markdown table.
pub fn md_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = format!("| {} |\n|", header.join(" | "));
    for _ in header {
        s.push_str("---|");
    }
    for r in rows {
        s.push_str(&format!("\n| {} |", r.join(" | ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{TOL, at_least, raises};

    fn report(checks: Vec<Check>) -> Report {
        Report {
            name: "t".into(),
            claim: "c".into(),
            command: "cargo xtask repro t".into(),
            quick: false,
            seeds: vec![1, 2],
            sections: vec!["## Results\n\ntable".into()],
            checks,
            plot: Some(PathBuf::from("/x/t.png")),
            wall_s: 1.0,
            data: serde_json::json!({}),
        }
    }

    #[test]
    fn one_failed_check_fails_the_claim() {
        let ok = raises("PSR raises pass@1", &[0.05, 0.07]);
        let bad = at_least("W-REINFORCE ≥ GRPO", &[-0.12, -0.10], TOL);
        assert!(report(vec![ok.clone()]).holds());
        let r = report(vec![ok, bad]);
        assert!(!r.holds());
        let md = r.markdown();
        assert!(
            md.contains("The claim does not hold**: 1 of 2 gating checks hold."),
            "{md}"
        );
        assert!(md.contains("**does not hold**"), "{md}");
        assert!(md.contains("-0.1100 ± 0.0141 (-0.1200, -0.1000)"), "{md}");
        assert!(md.contains("![t](t.png)"), "{md}");
        // no checks is not a pass
        assert!(!report(vec![]).holds());
    }

    #[test]
    fn reported_checks_do_not_gate_but_show() {
        let ok = raises("PSR raises pass@1", &[0.05, 0.07]);
        let bad = at_least("NSR keeps pass@8", &[-0.12, -0.10], TOL).reported();
        let mut r = report(vec![ok, bad.clone()]);
        r.quick = true;
        assert!(r.holds());
        let md = r.markdown();
        assert!(
            md.contains(
                "The --quick checks hold**: 1 of 1 gating checks hold; reported only: 0 of 1 hold."
            ),
            "{md}"
        );
        assert!(
            md.contains("**does not hold** (reported, not gating)"),
            "{md}"
        );
        // reported checks alone decide nothing
        assert!(!report(vec![bad]).holds());
    }

    #[test]
    fn writes_markdown_and_json() {
        let tmp = tempfile::tempdir().unwrap();
        report(vec![raises("x", &[0.1])]).write(tmp.path()).unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(tmp.path().join("result.json")).unwrap())
                .unwrap();
        assert_eq!(v["holds"], true);
        assert_eq!(v["checks"][0]["values"]["values"][0], 0.1);
        assert!(
            std::fs::read_to_string(tmp.path().join("result.md"))
                .unwrap()
                .contains("The claim holds")
        );
    }

    #[test]
    fn table_layout() {
        assert_eq!(
            md_table(&["a", "b"], &[vec!["1".into(), "2".into()]]),
            "| a | b |\n|---|---|\n| 1 | 2 |"
        );
    }
}
