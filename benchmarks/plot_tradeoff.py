"""Draws localisation against completeness from `area_control.py` output.

`benchmarks/area_control.py` prints one JSON line per run. This script
reads those lines from one or more log files and plots, per run, PxAP and
the pointing game against the share of images with every evidence part
covered: the trade-off that the area pressure moves along.

    python benchmarks/area_control.py gradcam '{"lam": 3}' > runs.log
    python benchmarks/plot_tradeoff.py runs.log --output tradeoff.png

Only rows with a coverage figure are drawn (rows scored on logits have
none). Labels come from `--label SPEC=TEXT` pairs, or the spec itself.
"""

import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_rows(paths):
    """The JSON rows (dicts) of `paths` that carry a coverage figure."""
    rows = []
    for path in paths:
        with open(path) as f:
            for line in f:
                if not line.startswith("{"):
                    continue
                row = json.loads(line)
                if "both" in row:
                    rows.append(row)
    return rows


def plot(rows, labels, output):
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for axis, key, title in (
        (axes[0], "pxap", "PxAP"),
        (axes[1], "pointing", "pointing game (%)"),
    ):
        for row in rows:
            value = row[key] * (100 if key == "pointing" else 1)
            post_hoc = row["name"] == "gradcam"
            axis.scatter(
                100 * row["both"],
                value,
                marker="*" if post_hoc else "o",
                s=140 if post_hoc else 50,
                color="tab:red" if post_hoc else "tab:blue",
            )
            axis.annotate(
                labels.get(row["name"], row["name"]),
                (100 * row["both"], value),
                textcoords="offset points",
                xytext=(5, 4),
                fontsize=8,
            )
        axis.set_xlabel("images with every evidence part covered (%)")
        axis.set_ylabel(title)
        axis.set_xlim(-5, 135)
        axis.grid(alpha=0.3)
    figure.suptitle("Localisation against completeness (area pressure)")
    figure.tight_layout()
    figure.savefig(output, dpi=110)
    print(f"Wrote {output}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="+", help="area_control.py outputs")
    parser.add_argument("--output", default="tradeoff.png")
    parser.add_argument(
        "--label",
        action="append",
        default=[],
        help="SPEC=TEXT: the label of the run whose name is SPEC",
    )
    args = parser.parse_args(argv)
    labels = dict(item.split("=", 1) for item in args.label)
    plot(read_rows(args.logs), labels, args.output)


if __name__ == "__main__":
    main()
