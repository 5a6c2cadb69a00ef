"""polygen.cache: private pickle files read back only when ours, private, current and whole."""

from __future__ import annotations

import os
import pickle
import stat

from polygen import cache


def test_what_is_written_reads_back_under_its_key_only(tmp_path):
    path = tmp_path / "c.pickle"
    cache.write(path, b"k1", {"secret": "s3cret"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert cache.read(path, b"k1") == {"secret": "s3cret"}
    assert cache.read(path, b"k2") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pickle"]  # no temporary file left


def test_a_file_others_may_read_or_write_is_not_unpickled(tmp_path):
    path = tmp_path / "c.pickle"
    cache.write(path, b"k", [1, 2])
    for mode in (0o640, 0o604, 0o620):
        path.chmod(mode)
        assert cache.read(path, b"k") is None
    path.chmod(0o600)
    assert cache.read(path, b"k") == [1, 2]


def test_missing_damaged_and_older_files_read_as_none(tmp_path):
    path = tmp_path / "c.pickle"
    assert cache.read(path, b"k") is None
    cache.write(path, b"k", [1])
    path.write_bytes(path.read_bytes()[:-3])  # cut short
    assert cache.read(path, b"k") is None
    # the layout an older polygen wrote: the key alone on the first line, then the pickle
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(b"k\n" + pickle.dumps([1]))
    assert cache.read(path, b"k") is None


def test_a_failed_write_leaves_nothing_and_raises_nothing(tmp_path, caplog):
    path = tmp_path / "gone" / "c.pickle"
    with caplog.at_level("DEBUG", logger="polygen.cache"):
        cache.write(path, b"k", [1])
    assert not path.parent.exists()
    assert "not written" in caplog.text
    cache.write(tmp_path / "c.pickle", b"k", lambda: 0)  # cannot be pickled
    assert list(tmp_path.iterdir()) == []
