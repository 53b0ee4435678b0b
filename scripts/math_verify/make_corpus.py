#!/usr/bin/env python3
"""Builds the math-verify agreement corpus for foil's `math` verifier.

Writes crates/foil-verifiers/tests/data/math_verify_corpus.jsonl: one row per
(gold, prediction) pair with its category and math-verify's verdict.

    python3 -m venv /root/mv-venv && /root/mv-venv/bin/pip install math-verify==0.9.0
    /root/mv-venv/bin/python scripts/math_verify/make_corpus.py

math-verify is called the way its README shows: gold and prediction both go through
`parse` (default extraction: LaTeX then plain expressions), the gold wrapped as
`\\boxed{gold}`; multiple-choice rows use `StringExtractionConfig(strings=A..E)` for both.
The verdict is `verify(gold, pred)` with default settings.
"""
import json
import os
import re
import sys

from math_verify import parse, verify, StringExtractionConfig

# (category, gold, equivalent predictions, non-equivalent predictions)
CASES = [
    ("integer", "42", ["42", "42.0", "042", "42.000"], ["43", "4.2", "-42"]),
    ("integer", "-7", ["-7", "-7.0"], ["7", "-8"]),
    ("thousands", "1000", ["1,000", "1000.00", "1 000", "1{,}000"], ["100", "1,001"]),
    ("thousands", "1234567", ["1,234,567", "1234567"], ["1,234,568", "123,456"]),
    ("trailing_zeros", "2.5", ["2.50", "2.500", "5/2"], ["2.05", "25"]),
    ("trailing_zeros", "3", ["3.0", "3.00", "03"], ["3.01", "30"]),
    ("fraction", "\\frac{1}{2}", ["1/2", "\\dfrac{1}{2}", "\\tfrac{1}{2}", "\\frac12", "0.5", "\\frac{2}{4}"], ["1/3", "2", "0.55"]),
    ("fraction", "\\frac{3}{4}", ["0.75", "3/4", "\\frac{6}{8}", "\\dfrac34"], ["4/3", "0.7"]),
    ("fraction", "-\\frac{2}{3}", ["-2/3", "\\frac{-2}{3}", "-0.666667"], ["2/3", "-0.67"]),
    ("fraction", "\\frac{1}{3}", ["0.333333", "\\frac{2}{6}", "1/3"], ["0.33", "0.3"]),
    ("decimal", "0.25", ["\\frac{1}{4}", "0.250", "1/4"], ["0.26", "2.5"]),
    ("decimal", "3.14", ["3.140", "3.14"], ["3.1415", "3.15"]),
    ("decimal", "0.125", ["\\frac{1}{8}", "0.1250"], ["0.12", "1/4"]),
    ("scientific", "1500", ["1.5 \\times 10^3", "1.5 \\cdot 10^{3}", "15 \\times 10^2"], ["1.5 \\times 10^4", "150"]),
    ("scientific", "0.00012", ["1.2 \\times 10^{-4}", "12 \\times 10^{-5}"], ["1.2 \\times 10^{-3}"]),
    ("scientific", "1.5 \\times 10^{3}", ["1500", "1.5e3"], ["1.5e4"]),
    ("percent", "50\\%", ["50%", "0.5", "50", "50 percent", "50\\%"], ["5%", "0.05", "51\\%"]),
    ("percent", "0.2", ["20\\%", "20%"], ["2%", "0.02"]),
    ("percent", "12.5\\%", ["12.5%", "0.125"], ["12%", "1.25"]),
    ("degrees", "30^\\circ", ["30", "30^{\\circ}", "30 degrees", "30°"], ["60^\\circ", "3"]),
    ("degrees", "90", ["90^\\circ", "90^{\\circ}"], ["45^\\circ"]),
    ("units", "5", ["5 \\text{ cm}", "5\\text{ meters}", "5 \\mbox{ cm}", "5 \\text{cm}^2"], ["6 \\text{ cm}", "50 \\text{ cm}"]),
    ("units", "12", ["12 \\text{ apples}", "12\\text{ hours}", "\\$12", "12 dollars"], ["13 \\text{ apples}"]),
    ("text", "\\text{yes}", ["\\text{yes}", "\\textbf{yes}"], ["\\text{no}"]),
    ("text", "\\text{odd}", ["\\text{odd}", "\\mathrm{odd}"], ["\\text{even}"]),
    ("left_right", "(1, 2)", ["\\left(1, 2\\right)", "(1,2)", "\\left( 1,2 \\right)"], ["\\left(2, 1\\right)", "(1, 3)"]),
    ("left_right", "\\frac{1}{2}", ["\\left(\\frac{1}{2}\\right)"], ["\\left(\\frac{1}{3}\\right)"]),
    ("dfrac", "\\frac{5}{6}", ["\\dfrac{5}{6}", "\\tfrac{5}{6}", "\\dfrac{10}{12}"], ["\\dfrac{6}{5}"]),
    ("mixed_number", "2\\frac{1}{2}", ["5/2", "2.5", "\\frac{5}{2}"], ["1", "2"]),
    ("mixed_number", "\\frac{7}{3}", ["2\\frac{1}{3}", "\\frac{14}{6}"], ["2\\frac{1}{2}"]),
    ("mixed_number", "3\\frac{3}{4}", ["3.75", "15/4", "3\\dfrac{3}{4}"], ["9/4", "3.5"]),
    ("symbolic", "x^2+2x+1", ["(x+1)^2", "x^2+1+2x", "1+2x+x^2"], ["x^2+1", "(x-1)^2"]),
    ("symbolic", "3x-6", ["3(x-2)", "-6+3x"], ["3x+6", "x-2"]),
    ("symbolic", "2\\sqrt{2}", ["\\sqrt{8}", "2 \\cdot \\sqrt{2}", "2.828427"], ["\\sqrt{2}", "2.83"]),
    ("symbolic", "\\frac{\\sqrt{3}}{2}", ["\\sqrt{3}/2", "\\frac{1}{2}\\sqrt{3}", "0.866025"], ["\\sqrt{2}/2", "\\frac{3}{2}"]),
    ("symbolic", "\\pi", ["\\pi", "3.141593"], ["3.14", "2\\pi"]),
    ("symbolic", "2\\pi", ["2 \\pi", "\\pi \\cdot 2", "6.283185"], ["\\pi"]),
    ("symbolic", "a+b", ["b+a"], ["a-b", "ab"]),
    ("symbolic", "\\frac{x}{2}", ["x/2", "0.5x", "\\frac{1}{2}x"], ["2x", "x"]),
    ("symbolic", "x^3", ["x \\cdot x \\cdot x", "x^{3}"], ["3x", "x^2"]),
    ("symbolic", "\\sqrt{2}+1", ["1+\\sqrt{2}", "2.414214"], ["\\sqrt{3}"]),
    ("tuple", "(1,2)", ["(1, 2)", "\\left(1,2\\right)"], ["(2,1)", "(1,3)"]),
    ("tuple", "(1,2,3)", ["(1, 2, 3)"], ["(3,2,1)", "(1,2)"]),
    ("tuple", "(\\frac{1}{2}, -3)", ["(0.5, -3)", "(1/2,-3)"], ["(-3, 0.5)", "(0.5, 3)"]),
    ("set", "\\{1,2,3\\}", ["\\{3,2,1\\}", "\\{1, 2, 3\\}", "\\{2,1,3\\}"], ["\\{1,2\\}", "\\{1,2,4\\}"]),
    ("set", "1,2", ["2,1", "1, 2", "1 \\text{ and } 2"], ["1,3", "1"]),
    ("set", "-2, 3", ["3, -2", "-2,3"], ["2, -3", "-2"]),
    ("interval", "[0,1)", ["[0, 1)", "\\left[0,1\\right)"], ["[0,1]", "(0,1)", "(0,1]"]),
    ("interval", "(-\\infty, 3]", ["(-\\infty,3]", "\\left(-\\infty, 3\\right]"], ["(-\\infty,3)", "(-\\infty, 4]"]),
    ("interval", "[2, \\infty)", ["[2,\\infty)"], ["(2, \\infty)", "[3, \\infty)"]),
    ("equation", "x=3", ["3", "x = 3"], ["x=4", "y=3", "4"]),
    ("equation", "5", ["x = 5", "n=5"], ["x = 6"]),
    ("equation", "y=2x+1", ["y = 1+2x", "y=2x+1"], ["y=2x-1", "y = x+1"]),
    ("nested_boxed", "\\frac{\\sqrt{3}}{2}", ["\\frac{\\sqrt{3}}{2}", "\\dfrac{\\sqrt{3}}{2}"], ["\\frac{\\sqrt{2}}{2}"]),
    ("nested_boxed", "\\frac{1}{\\frac{1}{2}}", ["2", "\\frac{2}{1}"], ["\\frac{1}{2}"]),
]

MC = [
    ("B", ["The answer is B", "Answer: B", "**B**", "I choose B.", "The final answer is B. I hope it is correct.",
           "After checking, B is right.", "The answer is (B)", "(B)"],
          ["Answer: C", "The answer is A.", "I choose D.", "the answer is b", "Because", "E"]),
    ("D", ["D", "Answer: D, since 4 > 3.", "So the final answer is D"], ["Answer: A", "C or maybe B"]),
]

LATEX_TEMPLATES = [
    ("boxed", "So the result is $\\boxed{{{p}}}$."),
    ("answer_is", "Therefore, the answer is ${p}$."),
    ("final_hope", "Final Answer: The final answer is ${p}$. I hope it is correct."),
    ("last_latex", "We simplify step by step. First $x = 2$, and in the end we obtain ${p}$"),
]
PLAIN_TEMPLATES = [
    ("hashes", "Natalia sold 48 clips in April and 24 in May, 48 + 24 = 72.\n#### {p}"),
    ("answer_is_plain", "So the answer is {p}."),
    ("last_number", "First we get 12 and 7, and then the total comes to {p}"),
    ("answer_colon", "Answer: {p}"),
]
PLAIN_RE = re.compile(r"^-?[\d,. ]+%?$")

HOSTILE = [
    ("3", "\\boxed{3"),
    ("3", "\\boxed{{{{{{{{{{3"),
    ("3", "\\boxed{" * 2000 + "3" + "}" * 2000),
    ("3", "\\boxed{3}" + "}" * 500),
    ("3", "{" * 5000),
    ("3", "x" * 200000 + " so the answer is 3"),
    ("3", "3 " + "y" * 200000),
    ("3", "\\frac{" * 300 + "3"),
    ("3", "(" * 1000 + "3" + ")" * 1000),
    ("3", "$" * 1001),
    ("3", "\\boxed{}"),
    ("3", ""),
    ("3", "####"),
    ("3", "The answer is"),
    ("3", "\\boxed{\\frac{3}{0}}"),
    ("0", "\\boxed{0/0}"),
    ("3", "\\boxed{1e999}"),
    ("3", "\\boxed{10^{10^{10}}}"),
    ("3", "\\boxed{x^{x^{x^{x^{x}}}}}"),
    ("3", "\\boxed{" + ",".join(["1"] * 300) + "}"),
    ("3", "\\boxed{3}\u200b\u0000"),
    ("3", "答案是 \\boxed{３}"),
    ("3", "\\boxed{\\sqrt{\\sqrt{\\sqrt{\\sqrt{81}}}}}"),
    ("3", "\\boxed{" + "+".join(["1"] * 3) + "}"),
    ("3", "\\boxed{" + "1+" * 2000 + "1}"),
    ("3", "\\boxed{9999999999999999999999999999999999999}"),
    ("3", "\\boxed{\\left(\\right.}"),
    ("3", "$\\boxed{3}$ $\\boxed{4}$ $\\boxed{5}$ " * 50),
    ("3", "\\fbox{3}"),
    ("3", "The answer is \\boxed{-3}"),
    ("3", "\\boxed{3!}"),
    ("6", "\\boxed{3!}"),
    ("3", "\\boxed{\\text{\\text{\\text{3}}}}"),
    ("3", "%%%%%%%" * 1000),
    ("3", "1," * 5000 + "3"),
]


def mv_verdict(gold, pred, mc):
    if mc:
        cfg = [StringExtractionConfig(strings=("A", "B", "C", "D", "E"))]
        return bool(verify(parse(gold, extraction_config=cfg), parse(pred, extraction_config=cfg)))
    return bool(verify(parse("\\boxed{" + gold + "}"), parse(pred)))


def rows():
    for cat, gold, eqs, neqs in CASES:
        for p in eqs + neqs:
            for tname, t in LATEX_TEMPLATES:
                yield cat, tname, gold, t.format(p=p), False
            if PLAIN_RE.match(p):
                for tname, t in PLAIN_TEMPLATES:
                    yield cat, tname, gold, t.format(p=p), False
    # answers inside a longer reasoning chain with distractor numbers
    for cat, gold, eqs, neqs in CASES[:20]:
        p = eqs[0]
        yield cat, "distractors", gold, f"Step 1: 17 + 5 = 22. Step 2: 22 - 3 = 19. So the value is $\\boxed{{{p}}}$, not 19.", False
    for gold, eqs, neqs in MC:
        for p in eqs + neqs:
            yield "multiple_choice", "mc", gold, p, True
    for gold, pred in HOSTILE:
        yield "hostile", "hostile", gold, pred, False


def main():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = os.path.join(root, "crates/foil-verifiers/tests/data/math_verify_corpus.jsonl")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    seen = set()
    n = 0
    with open(out, "w") as f:
        for cat, tname, gold, pred, mc in rows():
            if (gold, pred) in seen:
                continue
            seen.add((gold, pred))
            v = mv_verdict(gold, pred, mc)
            f.write(json.dumps({"id": n, "category": cat, "template": tname, "gold": gold,
                                "prediction": pred, "math_verify": v}, ensure_ascii=False) + "\n")
            n += 1
    print(f"wrote {n} rows to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
