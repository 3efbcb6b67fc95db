"""The command line: parse, build options and adapters, call the pipeline, present.

- ``parser.py``: one ``register`` per command.
- ``options.py``: the frozen ``Options`` from the parsed arguments.
- ``adapters.py``: the edge, where the ports' backends are built.
- ``commands.py``: one short function per command.
- ``present.py``: a text and a JSON presenter of every report, rendered by
  ``text_reports.py`` and ``json_reports.py``.

Errors are mapped to exit codes here, in one place.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from pipgate.cli.parser import build
from pipgate.cli.present import presenter_for
from pipgate.errors import ExitCode, PipgateError
from pipgate.options import Format


def main(argv: Sequence[str] | None = None) -> int:
    args = build().parse_args(argv)
    presenter = presenter_for(Format(getattr(args, "format", "text")))
    handler: Callable[..., int] = args.handler
    try:
        return int(handler(args))
    except PipgateError as error:
        presenter.error(error)
        return int(error.exit_code)
    except KeyboardInterrupt:
        print("pipgate: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except OSError as error:
        if os.environ.get("PIPGATE_DEBUG"):
            raise
        where = f": {error.filename}" if error.filename else ""
        presenter.error(
            PipgateError(
                f"{error.strerror or error}{where}", hint="check the path and its permissions"
            )
        )
        return int(ExitCode.EXTERNAL)


__all__ = ["main"]
