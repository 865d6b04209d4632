"""Issue 4, part 2: encode/decode throughput of the coder routes on the 12 MP photo's label plane.

Usage: /work/venv/bin/python /work/notes/scripts/bench_routes.py ROUTE [K ...] [--repeat N]
ROUTE as in sizes.py, plus:
  cx-groups   constriction AnsCoder, context-sorted groups (one Categorical model per group; the same
              symbols, groups and 12-bit tables as cs-runrow), coder stage only + numpy assembly
  cx-family   constriction AnsCoder with per-symbol probability rows (Categorical model family), whole
              plane in one call (the flag/rank symbols of cs-runrow; escapes excluded), coder stage only
Times: best of --repeat runs (default 3), after one warm-up run (numba compiles there; cache=True).
MP/s = 11.9 MP / seconds.
"""

from __future__ import annotations

import sys
import time

import numpy as np

sys.path.insert(0, "/work/notes/scripts")
from common import PHOTO, labels_for  # noqa: E402
from sizes import run  # noqa: E402


def best(fn, repeat):
    ts = []
    res = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = fn()
        ts.append(time.perf_counter() - t0)
    return min(ts), res


def constriction_groups(lab, k, repeat):
    import constriction

    import ctxsort as cs

    data, side = cs.encode_runrow(lab, k, "0")
    freq, counts = side["freq"], side["counts"]
    grp = np.repeat(np.arange(len(counts)), counts)
    syms = cs.rans_decode(data, grp, freq, side["lanes"])  # the grouped symbols, from the numpy coder
    used = np.flatnonzero(counts)
    models = {}
    for g in used:
        nz = int(np.max(np.flatnonzero(freq[g]))) + 1
        pr = freq[g, : max(2, nz)].astype(np.float64) / 4096.0
        models[g] = constriction.stream.model.Categorical(pr, perfect=False)
    bounds = np.concatenate(([0], np.cumsum(counts)))

    def enc():
        coder = constriction.stream.stack.AnsCoder()
        for g in used[::-1]:
            coder.encode_reverse(syms[bounds[g] : bounds[g + 1]].astype(np.int32), models[g])
        return coder.get_compressed()

    te, comp = best(enc, repeat)

    def dec():
        coder = constriction.stream.stack.AnsCoder(comp)
        out = [coder.decode(models[g], int(counts[g])) for g in used]
        return np.concatenate(out)

    td, back = best(dec, repeat)
    assert np.array_equal(back, syms[np.concatenate([np.arange(bounds[g], bounds[g + 1]) for g in used])])
    return te, td, 4 * len(comp), len(data)


def constriction_family(lab, k, repeat):
    import constriction

    import ctxsort as cs

    x, pat, f, r, vals = cs.runrow_symbols(lab, k)
    # flags (x > 0 columns) and ranks (f == 0) with their per-symbol probability rows (5 columns)
    data, side = cs.encode_runrow(lab, k, "0")
    freq = side["freq"]
    fl = np.zeros(lab.shape, bool)
    fl[:, 1:] = True
    rk = f == 0
    sym = np.concatenate([f[fl], r[rk]]).astype(np.int32)
    grp = np.concatenate([pat[fl], pat[rk] + 64])
    probs = (freq[grp, :5].astype(np.float32) / 4096.0)
    probs = np.maximum(probs, 1e-7).astype(np.float32)
    fam = constriction.stream.model.Categorical(perfect=False)

    def enc():
        coder = constriction.stream.stack.AnsCoder()
        coder.encode_reverse(sym, fam, probs)
        return coder.get_compressed()

    te, comp = best(enc, repeat)

    def dec():
        coder = constriction.stream.stack.AnsCoder(comp)
        return coder.decode(fam, probs)

    td, back = best(dec, repeat)
    assert np.array_equal(back, sym)
    return te, td, 4 * len(comp), len(sym)


def main() -> None:
    args = sys.argv[1:]
    repeat = 3
    if "--repeat" in args:
        i = args.index("--repeat")
        repeat = int(args[i + 1])
        del args[i : i + 2]
    route = args[0]
    ks = [int(a) for a in args[1:]] or [8, 256]
    for k in ks:
        _pal, lab = labels_for(PHOTO, k)
        mp = lab.size / 1e6
        if route.startswith("cx-"):
            fn = constriction_groups if route == "cx-groups" else constriction_family
            t0 = time.perf_counter()
            fn(lab, k, 1)  # warm-up
            te, td, nbytes, extra = fn(lab, k, repeat)
            print(f"{route:12s} K={k:3d} {mp:.2f} MP  coder stage: enc {te:6.3f} s {mp / te:7.2f} MP/s  dec {td:6.3f} s "
                  f"{mp / td:7.2f} MP/s  stream {8 * nbytes / lab.size:.4f} bpp  (symbols {extra})", flush=True)
            continue
        t0 = time.perf_counter()
        n, te0, td0 = run(route, lab, k)
        warm = time.perf_counter() - t0
        tes, tds = [], []
        for _ in range(repeat):
            n, te, td = run(route, lab, k)
            tes.append(te)
            tds.append(td)
        te, td = min(tes), min(tds)
        print(f"{route:12s} K={k:3d} {mp:.2f} MP  enc {te:6.3f} s {mp / te:7.2f} MP/s  dec {td:6.3f} s {mp / td:7.2f} MP/s  "
              f"payload {8 * n / lab.size:.4f} bpp  (first run incl. warm-up {warm:.2f} s)", flush=True)


if __name__ == "__main__":
    main()
