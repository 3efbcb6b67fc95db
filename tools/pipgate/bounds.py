"""How much a server may send pipgate, and for how long: ``limits:`` in config.yaml."""

from __future__ import annotations

import dataclasses

MIB = 1 << 20


@dataclasses.dataclass(frozen=True)
class Limits:
    page_bytes: int = 32 * MIB
    """One index page or registry listing."""
    file_bytes: int = 4096 * MIB
    """One file whose index published no size (a published size bounds its own file)."""
    page_seconds: float = 120.0
    """One page, in all: connection, redirects, retries and body."""
    file_seconds: float = 1800.0
    """One file, in all."""
