"""Mean ± sd over seeds of the rows that `area_control.py` and
`silhouettes.py` print, as a Markdown table per variant.

    python benchmarks/table.py benchmarks/results/completeness_seeds.jsonl

Each input line is one JSON row with `name`, `variant` and `seed` (rows
without a `name`, such as the detector's accuracy, are skipped, as are the
`(logits)` rows). Percentages are printed for shares.
"""

import json
import sys
from collections import defaultdict

import numpy as np

COLUMNS = (
    ("both", "all parts covered", 100),
    ("part_coverage", "part coverage", 100),
    ("pxap", "PxAP", 1),
    ("pointing", "pointing", 100),
    ("area", "area > 0.5", 100),
    ("acc", "accuracy", 100),
    ("judge_masked_out_acc", "independent judge, masked-out", 100),
    ("masked_out_acc", "own judge, masked-out (soft)", 100),
)


def main(paths):
    rows = defaultdict(lambda: defaultdict(list))
    seeds = defaultdict(set)
    for path in paths:
        with open(path) as f:
            for line in f:
                row = json.loads(line)
                name = row.get("name")
                if name is None or name.endswith("(logits)"):
                    continue
                variant = row.get("variant", "?")
                seeds[variant].add(row.get("seed"))
                for key, _, _ in COLUMNS:
                    if row.get(key) is not None:
                        rows[variant, name][key].append(row[key])
    for variant in sorted(seeds):
        print(f"\n{variant} (seeds {sorted(seeds[variant])})\n")
        print("| | " + " | ".join(label for _, label, _ in COLUMNS) + " |")
        print("|---" * (len(COLUMNS) + 1) + "|")
        for (row_variant, name), values in rows.items():
            if row_variant != variant:
                continue
            cells = []
            for key, _, scale in COLUMNS:
                v = np.asarray(values.get(key, []), float) * scale
                cells.append(
                    "–"
                    if v.size == 0
                    else f"{v.mean():.1f} ± {v.std():.1f} (n={v.size})"
                )
            print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
