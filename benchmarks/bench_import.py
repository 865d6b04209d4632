"""How long ``import kmq`` takes, against numpy and Pillow, which it cannot avoid.

Usage: python benchmarks/bench_import.py [--runs N] [--top T]

Figures are over N fresh interpreters: ``median s`` and ``min s`` are of ``python -X importtime``'s
cumulative wall time for the statement (interpreter start-up excluded); load on the machine only adds
time, so on a busy machine the minimum is the steadier figure. ``cpu s`` is the median user + system CPU
time of a separate ``python -c STATEMENT`` less that of ``python -c pass``. The target (issue 11, F3)
is that ``import kmq`` costs at most 0.05 s more than ``import numpy, PIL.Image``. The last table lists
the T modules that add most to ``import kmq`` beyond that baseline, from the median run.
"""

from __future__ import annotations

import argparse
import os
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


def cpu_seconds(statement: str) -> float:
    """User + system CPU seconds of one fresh ``python -c statement``, start-up included."""
    proc = subprocess.Popen([sys.executable, "-c", statement])
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"python -c {statement!r} exited {proc.returncode}")
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="fresh interpreters per statement (default 15)")
    parser.add_argument("--top", type=int, default=12, help="modules listed in the breakdown (default 12)")
    args = parser.parse_args()

    runs: dict[str, list[tuple[float, dict[str, float]]]] = {label: [] for label in STATEMENTS}
    cpu: dict[str, list[float]] = {label: [] for label in ("pass", *STATEMENTS)}
    for _ in range(args.runs):  # interleaved, so that machine load falls on every statement alike
        cpu["pass"].append(cpu_seconds("pass"))
        for label, statement in STATEMENTS.items():
            runs[label].append(importtime(statement))
            cpu[label].append(cpu_seconds(statement))
    medians = {label: statistics.median(total for total, _ in results) for label, results in runs.items()}
    minima = {label: min(total for total, _ in results) for label, results in runs.items()}
    startup = statistics.median(cpu["pass"])
    cpu_medians = {label: statistics.median(cpu[label]) - startup for label in STATEMENTS}

    print(f"median of {args.runs} fresh interpreters, python -X importtime, {sys.version.split()[0]}")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("figures in seconds; each with its excess over numpy + Pillow (+)")
    print(f"{'statement':<24}{'median s':>10}{'+':>8}{'min s':>10}{'+':>8}{'cpu s':>10}{'+':>8}")
    base = {name: figures["numpy + Pillow"] for name, figures in (("median", medians), ("min", minima))}
    for label in STATEMENTS:
        row = (medians[label], medians[label] - base["median"], minima[label], minima[label] - base["min"])
        used = (cpu_medians[label], cpu_medians[label] - cpu_medians["numpy + Pillow"])
        print(
            f"{label:<24}{row[0]:>10.3f}{row[1]:>+8.3f}{row[2]:>10.3f}{row[3]:>+8.3f}{used[0]:>10.3f}{used[1]:>+8.3f}"
        )

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
