"""``python -m pywebtransport``: see ``pywebtransport.cli``."""

from __future__ import annotations

import sys

from pywebtransport.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
