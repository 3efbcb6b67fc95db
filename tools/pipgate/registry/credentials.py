"""Registry credentials: from the environment or keyring, or Google's application default.

Never from files. ``EnvironmentCredentials`` reads
``PIPGATE_REGISTRY_USERNAME``/``PIPGATE_REGISTRY_PASSWORD`` (or twine's
``TWINE_USERNAME``/``TWINE_PASSWORD``), else keyring for the registry URL;
``GoogleCredentials`` gives ``oauth2accesstoken`` with an access token from
google-auth, refreshed before it expires and after a 401.
"""

from __future__ import annotations

import abc
import datetime
import os
import threading
import urllib.parse
from collections.abc import Mapping
from typing import Any

from pipgate.errors import InputError
from pipgate.http import client
from pipgate.registry.interface import RegistryError


class Credentials(abc.ABC):
    @abc.abstractmethod
    def get(self) -> tuple[str, str] | None:
        """(username, password), or None to let twine and pip ask keyring."""

    def refresh(self) -> None:  # noqa: B027 - an optional hook: most credentials are fixed
        """Called after a 401: get fresh credentials."""


class EnvironmentCredentials(Credentials):
    """A user name and password from the environment, else from keyring for the registry URL."""

    def __init__(self, url: str, environ: Mapping[str, str] | None = None) -> None:
        self.url = url
        self.environ = environ if environ is not None else os.environ
        self._keyring: tuple[str, str] | None = None
        self._asked_keyring = False

    def get(self) -> tuple[str, str] | None:
        for user_key, password_key in (
            ("PIPGATE_REGISTRY_USERNAME", "PIPGATE_REGISTRY_PASSWORD"),
            ("TWINE_USERNAME", "TWINE_PASSWORD"),
        ):
            user, password = self.environ.get(user_key), self.environ.get(password_key)
            if user and password:
                return user, password
        if not self._asked_keyring:
            self._keyring, self._asked_keyring = _from_keyring(self.url), True
        return self._keyring


def _from_keyring(url: str) -> tuple[str, str] | None:
    """keyring's credential for ``url`` (as pip and twine look it up), or None."""
    import keyring  # noqa: PLC0415 - only where no credential is in the environment
    import keyring.errors  # noqa: PLC0415

    netloc = urllib.parse.urlsplit(url).netloc
    for service in (url, netloc):
        try:
            found = keyring.get_credential(service, None)
        except keyring.errors.KeyringError:
            return None
        if found is not None and found.username and found.password:
            return found.username, found.password
    return None


class GoogleCredentials(Credentials):
    """google-auth application default credentials, as Artifact Registry wants them."""

    MARGIN = datetime.timedelta(minutes=5)
    SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)

    def __init__(self) -> None:
        self._found: Any = None
        # One lock for the lookup, the refresh and the read of the token: pages are read 32
        # at a time, and a thread must never see credentials another is still making (a
        # second lookup's token is None until refreshed, and goes out as "None").
        self._lock = threading.RLock()

    @property
    def credentials(self) -> Any:  # noqa: ANN401 - google-auth's credentials, untyped
        """google-auth's credentials, looked up on first use (a command that never reaches
        Artifact Registry never needs them)."""
        with self._lock:
            return self._lookup()

    def _lookup(self) -> Any:  # noqa: ANN401 - google-auth's credentials, untyped
        if self._found is None:
            # google-auth is imported only for Artifact Registry, where it is needed.
            import google.auth  # noqa: PLC0415
            import google.auth.exceptions  # noqa: PLC0415

            try:
                self._found, _ = google.auth.default(scopes=list(self.SCOPES))
            except google.auth.exceptions.DefaultCredentialsError as exc:
                raise InputError(
                    f"no Google application default credentials: {exc}",
                    hint="on Cloud Build the service account provides them; elsewhere run "
                    "'gcloud auth application-default login' or set "
                    "GOOGLE_APPLICATION_CREDENTIALS",
                ) from None
        return self._found

    def _expiring(self) -> bool:
        expiry = getattr(self.credentials, "expiry", None)
        token = getattr(self.credentials, "token", None)
        if token is None or expiry is None:
            return True
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        return bool(expiry - now < self.MARGIN)

    def refresh(self) -> None:
        import google.auth.exceptions  # noqa: PLC0415
        import google.auth.transport.requests  # noqa: PLC0415

        with self._lock:
            try:
                request = google.auth.transport.requests.Request(session=client().session)
                self.credentials.refresh(request)
            except google.auth.exceptions.GoogleAuthError as exc:
                raise RegistryError(
                    f"cannot get an access token: {type(exc).__name__}",
                    hint="check the service account and its roles",
                ) from None

    def get(self) -> tuple[str, str] | None:
        with self._lock:
            if self._expiring():
                self.refresh()
            return "oauth2accesstoken", str(self.credentials.token)
