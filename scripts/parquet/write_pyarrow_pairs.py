"""Writes data-samples/pref_arith_pairs_pyarrow.parquet from pref_arith_pairs.jsonl with
pyarrow (what Hugging Face `datasets` uses), so foil's Parquet reader is tested on a file
written by the reference implementation as well as by its own writer.

Run by hand (pip install pyarrow): python scripts/parquet/write_pyarrow_pairs.py
"""
import json
import pathlib

import pyarrow as pa
import pyarrow.parquet as pq

root = pathlib.Path(__file__).resolve().parents[2] / "data-samples"
rows = [json.loads(l) for l in (root / "pref_arith_pairs.jsonl").read_text().splitlines() if l.strip()]
schema = pa.schema([
    ("prompt", pa.string()),
    ("chosen", pa.string()),
    ("rejected", pa.string()),
    ("responses", pa.list_(pa.string())),
])
table = pa.Table.from_pylist(rows, schema=schema)
# two row groups, dictionary encoding and data page v2: the reader must cross them
pq.write_table(table, root / "pref_arith_pairs_pyarrow.parquet", row_group_size=10,
               use_dictionary=True, data_page_version="2.0", compression="snappy")
print(f"wrote {len(rows)} rows with pyarrow {pa.__version__}")
