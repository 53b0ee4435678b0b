//! `metrics.jsonl`: one JSON object per logged step, appended and flushed as it happens.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Map, Value};

/// An append-only JSONL metrics file.
#[derive(Debug)]
pub struct MetricsLog {
    path: PathBuf,
    file: File,
    lines: usize,
}

impl MetricsLog {
    /// Opens `path`, keeping only its first `keep_lines` lines (what the checkpoint being
    /// resumed had seen), or creating it empty when `keep_lines` is 0.
    pub fn open(path: &Path, keep_lines: usize) -> anyhow::Result<Self> {
        let mut kept = Vec::new();
        if keep_lines > 0 && path.exists() {
            let f = File::open(path).with_context(|| format!("reading {}", path.display()))?;
            for line in BufReader::new(f).lines().take(keep_lines) {
                kept.push(line?);
            }
        }
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)
            .with_context(|| format!("writing {}", path.display()))?;
        for l in &kept {
            writeln!(file, "{l}")?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
            lines: kept.len(),
        })
    }

    /// Appends one record.
    pub fn write(&mut self, record: Map<String, Value>) -> anyhow::Result<()> {
        let line = serde_json::to_string(&Value::Object(record))?;
        writeln!(self.file, "{line}")
            .and_then(|_| self.file.flush())
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.lines += 1;
        Ok(())
    }

    /// Lines written so far.
    pub fn lines(&self) -> usize {
        self.lines
    }
}
