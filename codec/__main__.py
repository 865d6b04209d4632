"""``python -m kmq``: the same as the ``kmq`` command."""

import sys

from kmq.cli.main import main

sys.exit(main())
