"""`python -m pipgate`."""

from __future__ import annotations

import sys

from pipgate.cli import main

if __name__ == "__main__":
    sys.exit(main())
