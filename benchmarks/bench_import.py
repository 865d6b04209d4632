"""How long ``import kmq`` takes, against numpy and Pillow, which it cannot avoid.

Usage: python benchmarks/bench_import.py [--runs N] [--top T]

Each figure is the median over N fresh interpreters of ``python -X importtime``'s cumulative
time for the statement (interpreter start-up excluded). The target (issue 11, F3) is that
``import kmq`` costs at most 0.05 s more than ``import numpy, PIL.Image``. The last table
lists the T modules that add most to ``import kmq`` beyond that baseline, from the median run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

STATEMENTS = {
    "numpy + Pillow": "import numpy, PIL.Image",
    "import kmq": "import kmq",
    "import kmq.container": "import kmq.container",
    "import kmq.cli.main": "import kmq.cli.main",
}
# importtime also reports the interpreter's own start-up; a line on stderr separates it.
MARK = "-- kmq bench_import mark --"


def importtime(statement: str) -> tuple[float, dict[str, float]]:
    """One fresh interpreter: total seconds for ``statement`` and each module's self time."""
    code = f"import sys; sys.stderr.write({MARK!r} + '\\n'); {statement}"
    run = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True)
    lines = run.stderr.splitlines()
    total = 0.0
    own: dict[str, float] = {}
    for line in lines[lines.index(MARK) + 1 :]:
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line[len("import time:") :].split("|")
        own[name.strip()] = int(self_us) / 1e6
        if not name[1:].startswith(" "):  # a top-level import of the statement itself
            total += int(cumulative_us) / 1e6
    return total, own


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="fresh interpreters per statement (default 15)")
    parser.add_argument("--top", type=int, default=12, help="modules listed in the breakdown (default 12)")
    args = parser.parse_args()

    runs: dict[str, list[tuple[float, dict[str, float]]]] = {label: [] for label in STATEMENTS}
    for _ in range(args.runs):  # interleaved, so that machine load falls on every statement alike
        for label, statement in STATEMENTS.items():
            runs[label].append(importtime(statement))
    medians = {label: statistics.median(total for total, _ in results) for label, results in runs.items()}

    print(f"median of {args.runs} fresh interpreters, python -X importtime, {sys.version.split()[0]}")
    print(f"{'statement':<24}{'seconds':>9}{'minus numpy + Pillow':>22}")
    base = medians["numpy + Pillow"]
    for label, seconds in medians.items():
        print(f"{label:<24}{seconds:>9.3f}{seconds - base:>+22.3f}")

    baseline_modules: set[str] = set().union(*(own for _, own in runs["numpy + Pillow"]))
    kmq_runs = sorted(runs["import kmq"], key=lambda run: run[0])
    _, own = kmq_runs[len(kmq_runs) // 2]
    extra = sorted(((s, name) for name, s in own.items() if name not in baseline_modules), reverse=True)
    extra_seconds = sum(seconds for seconds, _ in extra)
    print(f"\nmodules `import kmq` loads beyond numpy + Pillow: {len(extra)}, {extra_seconds:.3f} s self time")
    for seconds, name in extra[: args.top]:
        print(f"  {name:<40}{seconds:>8.4f}")


if __name__ == "__main__":
    main()
