"""Scratch folders a killed run leaves are swept by the next; a live run's never are."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from pipgate.fsutil import owned_scratch, sweep_scratch


def test_a_left_scratch_folder_is_swept_and_a_held_one_is_kept(tmp_path: Path) -> None:
    # What a run killed mid-download leaves: a folder, its owner file, a partial file.
    left = tmp_path / ".download-killed"
    left.mkdir()
    (left / ".owner").touch()
    (left / "big.whl").write_bytes(b"half")
    with owned_scratch(tmp_path, ".download-") as live:
        (live / "file.whl").write_bytes(b"in progress")
        assert sweep_scratch(tmp_path, ".download-") == 1
        assert not left.exists()
        assert (live / "file.whl").read_bytes() == b"in progress"  # a live run is untouched
    assert not live.exists()  # removed when its run ends


def test_a_folder_held_by_another_process_is_kept(tmp_path: Path) -> None:
    held = tmp_path / ".download-other"
    held.mkdir()
    with (held / ".owner").open("w") as owner:
        fcntl.flock(owner.fileno(), fcntl.LOCK_EX)  # flock locks belong to the open file
        # A second open of the owner file cannot take the lock while this one holds it.
        assert sweep_scratch(tmp_path, ".download-") == 0
        assert held.exists()
    assert sweep_scratch(tmp_path, ".download-") == 1


def test_a_sweep_in_the_moment_before_the_lock_is_taken_spares_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another run sweeps exactly between this run making its folder and locking it.
    real_flock = fcntl.flock
    swept: list[int] = []

    def flock_after_a_sweep(fd: int, operation: int) -> None:
        if operation == fcntl.LOCK_EX and not swept:
            swept.append(sweep_scratch(tmp_path, ".download-"))
        real_flock(fd, operation)

    monkeypatch.setattr(fcntl, "flock", flock_after_a_sweep)  # the module fsutil calls
    with owned_scratch(tmp_path, ".download-") as folder:
        (folder / "file.whl").write_bytes(b"kept")
        assert (folder / "file.whl").read_bytes() == b"kept"
    assert swept == [0]
