"""Context statistics of a label plane: empirical conditional entropy, adaptive code length, stored-model cost.

All three come from the joint counts n(c, x) of (context, symbol), computed with numpy:

* ``H``: empirical conditional entropy sum_c sum_x n_cx log2(n_c / n_cx) -- a static model fitted to
  this very image, stored for free (a lower bound for any model with these contexts).
* ``adaptive[a]``: the exact code length of sequential adaptive coding with Dirichlet(a) counts
  (p = (n_cx + a) / (n_c + A a), counts updated after each symbol); it depends only on the final counts:
  sum_c [lgamma(n_c + A_c a) - lgamma(A_c a)] - sum_cx [lgamma(n_cx + a) - lgamma(a)], in bits.
  a = 1/2 is Krichevsky-Trofimov; small a suits sparse contexts.
* ``static``: a stored model: per context, 12-bit frequencies (sum 4096, every symbol seen gets >= 1)
  plus the table: a bitmap of the used contexts (or their indices when sparse), then per used context
  an A_c-bit presence mask and 12 bits per present symbol. Coding cost is the cross-entropy with the
  quantised probabilities.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln

ALPHAS = (1.0, 0.5, 0.25, 0.125, 1 / 16, 1 / 32, 1 / 64)
LN2 = math.log(2.0)
PREC = 12


def _xlog2x(n: np.ndarray) -> float:
    n = n[n > 0].astype(np.float64)
    return float(np.sum(n * np.log2(n)))


def quantise(counts: np.ndarray, groups: np.ndarray, starts: np.ndarray, total: int = 1 << PREC) -> np.ndarray:
    """12-bit frequencies for each (context, symbol) row of counts; each context's sum is ``total``.

    counts: n_cx of the present (context, symbol) pairs, grouped by context (``starts`` = first row of each
    context, ``groups`` = context number of each row). Rounds n_cx * total / n_c, floors at 1, then moves the
    rounding error onto the largest entry of each context.
    """
    n_c = np.add.reduceat(counts, starts)
    f = np.maximum(1, np.rint(counts * total / n_c[groups])).astype(np.int64)
    err = total - np.add.reduceat(f, starts)
    # index of the largest count in each context
    order = np.lexsort((-counts, groups))
    first = order[starts]
    f[first] += err
    bad = f[first] < 1
    if np.any(bad):  # pathological (many singletons): fall back to an even spread per context
        for g in np.flatnonzero(bad):
            lo = starts[g]
            hi = starts[g + 1] if g + 1 < len(starts) else len(counts)
            m = hi - lo
            fs = np.full(m, total // m, np.int64)
            fs[: total - fs.sum()] += 1
            f[lo:hi] = fs
    return f


def stats(ctx: np.ndarray, sym: np.ndarray, alphabet, space: float | None = None) -> dict:
    """Statistics of coding ``sym`` given ``ctx``.

    ctx, sym : int64 arrays of equal length (sym < 2**9, ctx < 2**54).
    alphabet : int, or a function from an array of context ids to alphabet sizes.
    space : size of the context space (for the stored model's used-context map); default: max ctx + 1.
    """
    n = len(sym)
    out = {"n": n}
    if n == 0:
        out.update(H=0.0, static=0.0, adaptive={a: 0.0 for a in ALPHAS}, contexts=0)
        return out
    joint = ctx.astype(np.int64) * 512 + sym.astype(np.int64)
    uj, n_cx = np.unique(joint, return_counts=True)
    cj = uj >> 9
    starts = np.flatnonzero(np.r_[True, cj[1:] != cj[:-1]])
    groups = np.cumsum(np.r_[False, cj[1:] != cj[:-1]])
    n_c = np.add.reduceat(n_cx, starts)
    ctx_ids = cj[starts]
    out["contexts"] = len(ctx_ids)
    out["H"] = (_xlog2x(n_c) - _xlog2x(n_cx))
    a_c = np.full(len(ctx_ids), alphabet, np.float64) if np.isscalar(alphabet) else np.asarray(alphabet(ctx_ids), np.float64)
    ad = {}
    for a in ALPHAS:
        v = np.sum(gammaln(n_c + a_c * a) - gammaln(a_c * a)) - np.sum(gammaln(n_cx + a) - gammaln(a))
        ad[a] = float(v / LN2)
    out["adaptive"] = ad
    f = quantise(n_cx, groups, starts)
    code = float(np.sum(n_cx * (PREC - np.log2(f))))
    used = len(ctx_ids)
    sp = float(space) if space is not None else float(ctx_ids.max() + 1)
    ctx_map = min(sp, used * math.ceil(math.log2(max(sp, 2))))
    table = ctx_map + float(np.sum(a_c)) + PREC * len(n_cx)
    out["static"] = code + table
    out["static_table"] = table
    return out


def add(a: dict, b: dict) -> dict:
    """Sum of two stats (for a scheme coded in two parts, e.g. rank then escape value)."""
    return {
        "n": a["n"],
        "H": a["H"] + b["H"],
        "static": a["static"] + b["static"],
        "static_table": a["static_table"] + b["static_table"],
        "adaptive": {k: a["adaptive"][k] + b["adaptive"][k] for k in ALPHAS},
        "contexts": a["contexts"] + b["contexts"],
    }
