"""The one cache location rule shared by the basis, matplotlib and the validator's deno cache."""
from __future__ import annotations

from bidsmrs.io.cache import cache_dir


def test_cache_dir_under_bidsmrs_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BIDSMRS_CACHE", str(tmp_path / "cache"))
    path = cache_dir("basis")
    assert path == tmp_path / "cache" / "basis" and path.is_dir()


def test_cache_dir_falls_back(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("BIDSMRS_CACHE", str(blocker))          # cannot hold a subfolder
    monkeypatch.setenv("HOME", str(blocker))                    # neither can ~/.cache
    assert cache_dir("basis") is None
    assert cache_dir("basis", fallback=tmp_path / "work") == tmp_path / "work" / "basis"
