"""pipgate: keep a private Python package registry holding exactly what was approved."""

from __future__ import annotations

__version__ = "0.1.0"
