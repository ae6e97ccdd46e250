"""The CLI's first-run notice: shown while Numba's cache lacks the kernels, not after."""

import sys

from fastunlc import cli, firstrun

TAG = f"py{sys.version_info[0]}{sys.version_info[1]}"


def _segment_argv(tmp_path, *extra):
    # A missing input fails fast after the notice: no kernel is compiled by this test.
    return ["segment", str(tmp_path / "missing.mp4"), "--out", str(tmp_path / "out"), *extra]


def test_notice_when_the_cache_is_empty(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "empty-cache"))
    assert not firstrun.kernels_compiled()
    cli.main(_segment_argv(tmp_path))
    assert firstrun.FIRST_RUN_NOTICE in capsys.readouterr().err


def test_quiet_and_show_say_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "empty-cache"))
    cli.main(_segment_argv(tmp_path, "--quiet"))
    cli.main(["show", str(tmp_path / "no-dataset")])
    assert firstrun.FIRST_RUN_NOTICE not in capsys.readouterr().err


def test_no_notice_when_every_kernel_module_is_cached(tmp_path, monkeypatch, capsys):
    """Copy a fresh index per kernel module into an empty NUMBA_CACHE_DIR."""
    import numba

    cache = tmp_path / "cache"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(cache))
    sources = firstrun.kernel_modules()
    assert sources
    for source in sources:
        target = firstrun._cache_dirs(source)[0]
        target.mkdir(parents=True, exist_ok=True)
        _write_index(target / f"{source.stem}.k-1.{TAG}.nbi", numba.__version__, source)
        assert (source is sources[-1]) == firstrun.kernels_compiled()
    cli.main(_segment_argv(tmp_path))
    assert firstrun.FIRST_RUN_NOTICE not in capsys.readouterr().err


def test_stale_index_counts_as_not_compiled(tmp_path, monkeypatch):

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "cache"))
    for source in firstrun.kernel_modules():
        target = firstrun._cache_dirs(source)[0]
        target.mkdir(parents=True, exist_ok=True)
        _write_index(target / f"{source.stem}.k-1.{TAG}.nbi", "0.0.0", source)
    assert not firstrun.kernels_compiled()


def _write_index(path, version, source):
    """An index as numba.core.caching.IndexDataCacheFile writes it."""
    import hashlib
    import pickle

    stamp = hashlib.sha256(source.read_bytes()).digest()
    with open(path, "wb") as f:
        pickle.dump(version, f, protocol=-1)
        f.write(pickle.dumps((stamp, {("sig",): f"k-1.{TAG}.1.nbc"})))
