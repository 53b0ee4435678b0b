"""Seeded dumps of reasoning-gym generators as JSONL (run inside a venv that has it).

Usage: python reasoning_gym_dump.py OUT_DIR SEED SIZE NAME...

For each generator NAME (e.g. countdown, gsm_symbolic, basic_arithmetic) writes
OUT_DIR/NAME.jsonl with SIZE items of `reasoning_gym.create_dataset(NAME, seed=SEED,
size=SIZE)`, one line per item:

    {"id": "NAME-00000", "question": ..., "answer": ..., "metadata": {...}}

and checks that reasoning-gym's own scorer gives each reference answer full marks
(`score_answer(answer, entry) == 1`), so the dump is self-consistent. reasoning-gym
(open-thought, Apache-2.0): https://github.com/open-thought/reasoning-gym
"""

import json
import sys


def main(out, seed, size, names):
    import reasoning_gym as rg

    for name in names:
        ds = rg.create_dataset(name, seed=seed, size=size)
        path = f"{out}/{name}.jsonl"
        bad = 0
        with open(path, "w", encoding="utf-8") as f:
            for i, x in enumerate(ds):
                if ds.score_answer(answer=x["answer"], entry=x) < 1.0:
                    bad += 1
                row = {"id": f"{name}-{i:05d}", "question": x["question"],
                       "answer": str(x["answer"]), "metadata": x.get("metadata", {})}
                f.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        if bad:
            sys.exit(f"{path}: {bad} reference answers score below 1 with reasoning-gym's scorer")
        print(f"{path}: {size} items (seed {seed})")


if __name__ == "__main__":
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])
