"""Converts the CHAMP problems of the PyPI wheel `champ-dataset` to JSONL.

Usage: python3 champ.py WHEEL OUT_DIR

CHAMP (Mao, Kim, Zhou 2024, "CHAMP: A Competition-level Dataset for Fine-Grained
Analyses of LLMs' Mathematical Reasoning Capabilities", arXiv 2401.06961): 270
competition problems with step-wise solutions and final answers, in
`champ_dataset/dataset_files/v0.json`. Writes OUT_DIR/all.jsonl, one line per problem:

    {"id": "P_Combinatorics_1", "category": "Combinatorics", "problem": ...,
     "solution": steps joined by newlines, "steps": [...], "answer": ...}

(texts without the dataset's `@@` math markers) and OUT_DIR/LICENSE from the wheel's
metadata. Standard library only.
"""

import json
import sys
import zipfile

MEMBER = "champ_dataset/dataset_files/v0.json"


def main(wheel, out):
    with zipfile.ZipFile(wheel) as z:
        data = json.loads(z.read(MEMBER))
        lic = [n for n in z.namelist() if ".dist-info/" in n and n.rsplit("/", 1)[-1].startswith("LICENSE")]
        if not lic:
            sys.exit(f"{wheel}: no licence file in the wheel metadata")
        license_text = z.read(lic[0]).decode("utf-8")
    rows = []
    for key, p in data["problems"].items():
        steps = [s["_text"] for s in (p.get("solution") or {}).get("steps") or []]
        for field in ("_text", "_answer"):
            if not isinstance(p.get(field), str):
                sys.exit(f"{wheel}:{MEMBER}: problem {key} has no string {field!r}")
        rows.append({
            "id": p.get("identifier", key),
            "category": p.get("category", ""),
            "problem": p["_text"],
            "solution": "\n".join(steps),
            "steps": steps,
            "answer": p["_answer"],
        })
    with open(f"{out}/all.jsonl", "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    with open(f"{out}/LICENSE", "w", encoding="utf-8") as f:
        f.write(license_text)
    print(f"{out}/all.jsonl: {len(rows)} problems")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
