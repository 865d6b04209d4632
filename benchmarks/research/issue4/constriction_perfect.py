"""constriction 0.5.0: the same probabilities give different streams with perfect=True (the default) and False.

Usage: /work/venv/bin/python /work/notes/scripts/constriction_perfect.py
"""
import numpy as np
import constriction

p = np.array([0.3, 0.1, 0.6])
for perfect in (True, False):
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(np.array([0, 1, 2, 2], np.int32), constriction.stream.model.Categorical(p, perfect=perfect))
    print(f"perfect={perfect}: {coder.get_compressed()}")
