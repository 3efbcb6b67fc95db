"""Exit codes and the error bases every part of pipgate raises.

Each port (allowlist, locker, auditor, registry, ...) has one base error that
subclasses one of the three kinds below; the CLI maps the kind to an exit code
in one place, so a caller never has to guess what a failure meant.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """The exit codes of every pipgate command."""

    OK = 0
    POLICY = 1
    """A policy said no: an unaccepted vulnerability, a refused package."""
    BAD_INPUT = 2
    """The allowlist, the configuration or the command line is wrong."""
    EXTERNAL = 3
    """An external tool or service failed or could not give an answer."""
    INTERRUPTED = 130


class PipgateError(Exception):
    """Base of every error pipgate reports to a person.

    ``message`` says what is wrong; ``hint`` says what to do about it.
    """

    exit_code: ExitCode = ExitCode.EXTERNAL

    def __init__(
        self, message: str, *, hint: str | None = None, report: object | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.report = report
        """What the step found before it said no (a verdict's findings), for the presenter."""


class InputError(PipgateError):
    """Bad input: exit 2."""

    exit_code = ExitCode.BAD_INPUT


class PolicyError(PipgateError):
    """A policy refused something: exit 1."""

    exit_code = ExitCode.POLICY


class ExternalError(PipgateError):
    """An external tool or service failed: exit 3."""

    exit_code = ExitCode.EXTERNAL
