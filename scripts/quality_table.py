"""The README's quality table from saved sweeps: a row per policy, a column per (prompts, budget).

Each cell is ΔNLL (teacher-forced on the baseline's tokens, mean over prompts; lower is better) and
token agreement with the baseline, from each sweep folder's `sweep.csv`; the lowest ΔNLL of a
column is in bold. `ov-genai` runs in GenAI's runtime, which cannot be teacher-forced: agreement only.

    python scripts/quality_table.py card=docs/data/sweep-smollm2-card:32,64,128 \\
        passages=docs/data/sweep-smollm2-passages:64,128,256
"""
import csv
import sys


def read(spec: str):
    label, rest = spec.split("=", 1)
    folder, budgets = rest.split(":")
    rows = {(int(r["budget"]), r["policy"]): r for r in csv.DictReader(open(f"{folder}/sweep.csv"))}
    return label, [int(b) for b in budgets.split(",")], rows


def cell(r, best) -> str:
    if r is None:
        return "–"
    d = "–" if not r["delta_nll"] else f"{float(r['delta_nll']):+.3f}"
    if best is not None and r["delta_nll"] and float(r["delta_nll"]) == best:
        d = f"**{d}**"
    return f"{d} / {float(r['agreement']):.0%}"


def main(specs):
    sweeps = [read(s) for s in specs]
    policies = list(dict.fromkeys(p for _, _, rows in sweeps for (_, p) in rows))
    cols = [(label, b, rows) for label, budgets, rows in sweeps for b in budgets]
    print("| policy | " + " | ".join(f"{label}, {b}" for label, b, _ in cols) + " |")
    print("|---|" + "---:|" * len(cols))
    bests = []
    for _, b, rows in cols:
        vals = [float(rows[(b, p)]["delta_nll"]) for p in policies if (b, p) in rows and rows[(b, p)]["delta_nll"]]
        bests.append(min(vals) if vals and max(vals) > 0 else None)
    for p in policies:
        print(f"| `{p}` | " + " | ".join(cell(rows.get((b, p)), best) for (_, b, rows), best in zip(cols, bests)) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
