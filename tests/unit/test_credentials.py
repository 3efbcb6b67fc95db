"""Google credentials shared by the threads that read pages at once."""

from __future__ import annotations

import datetime
import threading
import time

import pytest

from pipgate.registry import GoogleCredentials


class _Fake:
    def __init__(self) -> None:
        self.token: str | None = None
        self.expiry: datetime.datetime | None = None

    def refresh(self, request: object) -> None:
        time.sleep(0.01)
        self.token = "ya29.fake-token"
        self.expiry = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) + (
            datetime.timedelta(hours=1)
        )


def test_threads_share_one_lookup_and_never_send_a_token_not_yet_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import google.auth

    lookups: list[_Fake] = []

    def default(scopes: list[str]) -> tuple[_Fake, str]:
        time.sleep(0.05)  # a lookup takes a while: every thread arrives during it
        found = _Fake()
        lookups.append(found)
        return found, "test-project"

    monkeypatch.setattr(google.auth, "default", default)
    credentials = GoogleCredentials()
    tokens: list[tuple[str, str] | None] = []
    start = threading.Barrier(16)

    def ask() -> None:
        start.wait()
        tokens.append(credentials.get())

    threads = [threading.Thread(target=ask) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(lookups) == 1
    assert tokens == [("oauth2accesstoken", "ya29.fake-token")] * 16
