"""`python -m workers ...` is the same as `pms ...`."""

import sys

from workers.cli import main

sys.exit(main())
