//! Parquet files as [`Record`]s, for the `parquet` task ([`crate::parquet_task`]) and any
//! other reader of records: each row becomes the JSON object the JSONL path would read
//! (`parquet::record::Row::to_json_value`, the `parquet` crate without arrow), located as
//! `FILE row N` (1-based across row groups), with null top-level fields left out (as a
//! missing key in JSONL). Also a small writer of string and string-list tables, which
//! makes the sample files in `data-samples/` from their JSONL twins.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail, ensure};
use parquet::basic::{LogicalType, Repetition, Type as PhysicalType};
use parquet::data_type::{ByteArray, ByteArrayType};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::SerializedFileReader;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use serde_json::{Map, Value};

use crate::rows::{Record, Records, bad};

/// Calls `f(row_number, fields)` for every row of a Parquet file (1-based, across row
/// groups; null top-level fields left out); an error from `f` is reported as
/// `FILE row N: …` or, with `skip`, counted. Stops after `limit` accepted rows when
/// `limit > 0`. Returns (rows seen, skipped).
pub fn for_each_parquet_row(
    path: &Path,
    skip: bool,
    limit: usize,
    mut f: impl FnMut(usize, Map<String, Value>) -> anyhow::Result<()>,
) -> anyhow::Result<(usize, usize)> {
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let reader = SerializedFileReader::new(file)
        .with_context(|| format!("{} is not a readable Parquet file", path.display()))?;
    let (mut seen, mut skipped, mut taken) = (0, 0, 0);
    for (k, row) in reader.into_iter().enumerate() {
        if limit > 0 && taken == limit {
            break;
        }
        let n = k + 1;
        let row =
            row.with_context(|| format!("{} row {n}: cannot decode the row", path.display()))?;
        seen += 1;
        let fields = match row.to_json_value() {
            Value::Object(m) => m.into_iter().filter(|(_, v)| !v.is_null()).collect(),
            v => bail!(
                "{} row {n}: the row decoded to {v}, not an object",
                path.display()
            ),
        };
        match f(n, fields) {
            Ok(()) => taken += 1,
            Err(e) => bad(
                skip,
                &mut skipped,
                &format!("{} row {n}", path.display()),
                e,
            )?,
        }
    }
    Ok((seen, skipped))
}

/// Reads a Parquet file's rows as [`Record`]s (`FILE row N`, short id `STEM:N`); `check`
/// runs on every record and its errors name the row.
pub fn read_parquet(
    path: &Path,
    skip: bool,
    limit: usize,
    check: &mut dyn FnMut(&Record) -> anyhow::Result<()>,
) -> anyhow::Result<Records> {
    let stem = crate::rows::stem(path);
    let mut records = Vec::new();
    let (seen, skipped) = for_each_parquet_row(path, skip, limit, |n, fields| {
        let r = Record {
            location: format!("{} row {n}", path.display()),
            short: format!("{stem}:{n}"),
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

/// Writes JSON objects as a one-row-group, snappy-compressed Parquet file with one
/// column per key (in order of first appearance): an optional UTF-8 string column, or,
/// for a key that holds an array in any record, a list of strings in Parquet's standard
/// three-level `LIST` layout (what pyarrow and HF datasets write for `list<string>`,
/// e.g. the `responses` of a ranking). A key missing from a record is a null. Strings and
/// arrays of strings are written (enough for the GSM8K, MATH, pair and ranking shapes);
/// anything else is an error naming the record (0-based) and key.
pub fn write_table(path: &Path, records: &[Map<String, Value>]) -> anyhow::Result<()> {
    let mut keys: Vec<(String, bool)> = Vec::new();
    for r in records {
        for (k, v) in r {
            match keys.iter_mut().find(|(name, _)| name == k) {
                Some((_, list)) => *list |= v.is_array(),
                None => keys.push((k.clone(), v.is_array())),
            }
        }
    }
    ensure!(!keys.is_empty(), "no fields to write");
    let string = |name: &str, repetition| {
        Type::primitive_type_builder(name, PhysicalType::BYTE_ARRAY)
            .with_repetition(repetition)
            .with_logical_type(Some(LogicalType::String))
            .build()
            .map(Arc::new)
    };
    let fields = keys
        .iter()
        .map(|(k, list)| {
            if !list {
                return string(k, Repetition::OPTIONAL);
            }
            // optional group k (LIST) { repeated group list { optional binary element } }
            let list_group = Type::group_type_builder("list")
                .with_repetition(Repetition::REPEATED)
                .with_fields(vec![string("element", Repetition::OPTIONAL)?])
                .build()?;
            Type::group_type_builder(k)
                .with_repetition(Repetition::OPTIONAL)
                .with_logical_type(Some(LogicalType::List))
                .with_fields(vec![Arc::new(list_group)])
                .build()
                .map(Arc::new)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let schema = Arc::new(
        Type::group_type_builder("schema")
            .with_fields(fields)
            .build()?,
    );
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(parquet::basic::Compression::SNAPPY)
            .build(),
    );
    let file = File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut w = SerializedFileWriter::new(file, schema, props)?;
    let mut rg = w.next_row_group()?;
    for (k, list) in &keys {
        // definition levels: a string column has 0 = null, 1 = value; a list column has
        // 0 = null list, 1 = empty list, 2 = null element, 3 = element; repetition level
        // 0 starts a row, 1 continues its list
        let (mut values, mut defs, mut reps) = (Vec::new(), Vec::new(), Vec::new());
        for (i, r) in records.iter().enumerate() {
            let bad = |v: &Value| {
                let what = if *list {
                    "strings or arrays of strings"
                } else {
                    "strings"
                };
                anyhow::anyhow!("record {i}, field {k:?}: only {what} are written, got {v}")
            };
            match (r.get(k), list) {
                (None | Some(Value::Null), _) => {
                    defs.push(0);
                    reps.push(0);
                }
                (Some(Value::String(s)), false) => {
                    defs.push(1);
                    values.push(ByteArray::from(s.as_str()));
                }
                (Some(Value::Array(items)), true) => {
                    if items.is_empty() {
                        defs.push(1);
                        reps.push(0);
                    }
                    for (j, item) in items.iter().enumerate() {
                        reps.push(if j == 0 { 0 } else { 1 });
                        match item {
                            Value::Null => defs.push(2),
                            Value::String(s) => {
                                defs.push(3);
                                values.push(ByteArray::from(s.as_str()));
                            }
                            v => return Err(bad(v)),
                        }
                    }
                }
                (Some(v), _) => return Err(bad(v)),
            }
        }
        let mut col = rg.next_column()?.context("the schema ran out of columns")?;
        col.typed::<ByteArrayType>().write_batch(
            &values,
            Some(&defs),
            list.then_some(reps.as_slice()),
        )?;
        col.close()?;
    }
    rg.close()?;
    w.close()?;
    Ok(())
}

/// Converts a JSONL file of objects with string (or string-array) fields to Parquet
/// ([`write_table`]).
pub fn write_jsonl_as_parquet(jsonl: &Path, out: &Path) -> anyhow::Result<usize> {
    let mut rows = Vec::new();
    crate::rows::for_each_jsonl_line(jsonl, false, 0, |_, line| {
        match serde_json::from_str(line)? {
            Value::Object(m) => rows.push(m),
            v => bail!("expected a JSON object, got {v}"),
        }
        Ok(())
    })?;
    write_table(out, &rows)?;
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{obj, samples};

    #[test]
    fn committed_samples_match_their_jsonl() {
        for s in ["gsm8k_sample", "math_sample", "pref_arith_pairs"] {
            let from_jsonl: Vec<_> = crate::rows::read_jsonl(
                Path::new(&samples(&format!("{s}.jsonl"))),
                false,
                0,
                |_| Ok(()),
            )
            .unwrap()
            .records
            .into_iter()
            .map(|r| (r.short, r.fields))
            .collect();
            let from_parquet: Vec<_> = read_parquet(
                Path::new(&samples(&format!("{s}.parquet"))),
                false,
                0,
                &mut |_| Ok(()),
            )
            .unwrap()
            .records
            .into_iter()
            .map(|r| (r.short, r.fields))
            .collect();
            // same ids (stem:N), same fields in the same order, same text
            assert!(from_jsonl.len() >= 8);
            assert_eq!(from_parquet, from_jsonl, "{s}");
        }
    }

    #[test]
    fn rows_are_numbered_nulls_dropped_and_bad_rows_located_or_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        write_table(
            &path,
            &[
                obj(serde_json::json!({"q": "a", "a": "1"})),
                obj(serde_json::json!({"q": "b"})),
                obj(serde_json::json!({"q": "c", "a": "3"})),
            ],
        )
        .unwrap();
        let need_a = |r: &Record| -> anyhow::Result<()> {
            ensure!(r.fields.contains_key("a"), "no a");
            Ok(())
        };
        let e = read_parquet(&path, false, 0, &mut { need_a }).unwrap_err();
        let e = format!("{e:#}");
        // row 2's null "a" is left out of the record, so the check fails there
        assert!(
            e.contains(&format!("{} row 2: bad record", path.display())),
            "{e}"
        );
        let r = read_parquet(&path, true, 0, &mut { need_a }).unwrap();
        // 3 seen, 1 skipped; ids stem:row
        assert_eq!((r.seen, r.skipped), (3, 1));
        let shorts: Vec<&str> = r.records.iter().map(|r| r.short.as_str()).collect();
        assert_eq!(shorts, ["t:1", "t:3"]);
        assert_eq!(
            r.records[1].fields,
            obj(serde_json::json!({"q": "c", "a": "3"}))
        );
        // limit counts accepted rows
        let r = read_parquet(&path, true, 1, &mut { need_a }).unwrap();
        assert_eq!((r.records.len(), r.seen), (1, 1));
        // not Parquet: an error naming the file, skip or not
        let jsonl = samples("gsm8k_sample.jsonl");
        let e = format!(
            "{:#}",
            read_parquet(Path::new(&jsonl), true, 0, &mut |_| Ok(())).unwrap_err()
        );
        assert!(
            e.contains(&jsonl) && e.contains("not a readable Parquet file"),
            "{e}"
        );
    }

    #[test]
    fn list_columns_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.parquet");
        let rows = [
            obj(serde_json::json!({"prompt": "q1", "responses": ["a", "b", "c"]})),
            obj(serde_json::json!({"prompt": "q2", "chosen": "x", "rejected": "y"})),
            obj(serde_json::json!({"prompt": "q3", "responses": []})),
            obj(serde_json::json!({"prompt": "q4", "responses": ["d", null]})),
        ];
        write_table(&path, &rows).unwrap();
        let r = read_parquet(&path, false, 0, &mut |_| Ok(())).unwrap();
        let got: Vec<Value> = r
            .records
            .into_iter()
            .map(|r| Value::Object(r.fields))
            .collect();
        // row 2 has no responses (null list → left out) and rows 1, 3, 4 no chosen or
        // rejected; the lists keep their order, emptiness and null element
        assert_eq!(
            got,
            [
                serde_json::json!({"prompt": "q1", "responses": ["a", "b", "c"]}),
                serde_json::json!({"prompt": "q2", "chosen": "x", "rejected": "y"}),
                serde_json::json!({"prompt": "q3", "responses": []}),
                serde_json::json!({"prompt": "q4", "responses": ["d", null]}),
            ]
        );
        let e = write_table(&path, &[obj(serde_json::json!({"responses": ["a", 3]}))]).unwrap_err();
        assert!(
            format!("{e:#}").contains("record 0, field \"responses\": only strings or arrays"),
            "{e:#}"
        );
    }

    #[test]
    fn writer_rejects_non_strings() {
        let dir = tempfile::tempdir().unwrap();
        let e = write_table(
            &dir.path().join("x.parquet"),
            &[obj(serde_json::json!({"q": "a", "n": 3}))],
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("record 0, field \"n\""), "{e:#}");
    }
}
