"""The kmq command line, imported as kmq.cli."""

import sys
import warnings

from kmq import ctx1

from .report import PROG

# Said once here, before any command runs or forks workers, as a line of the command's own;
# kmq's other warnings reach the command as notes (see cli/report.py).
with warnings.catch_warnings(record=True) as _caught:
    warnings.simplefilter("always")
    ctx1.warn_backend_choice()
for _warning in _caught:
    print(f"{PROG}: warning: {_warning.message}", file=sys.stderr)
