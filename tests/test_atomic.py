"""Atomic writes: whole content or the old one, never a temporary file left over, and a normal file mode."""

import os

import pytest

from dd_plugins.atomic import atomic_write


def test_a_written_file_gets_the_mode_of_a_normally_created_one(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "out.bin", lambda f: f.write(b"new"))
    finally:
        os.umask(old)
    assert (tmp_path / "out.bin").read_bytes() == b"new"
    assert (tmp_path / "out.bin").stat().st_mode & 0o777 == 0o644  # mkstemp alone gives 0o600


def test_a_failed_write_keeps_the_old_content_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def broken(f):
        f.write(b"half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(target, broken)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.bin"]
