"""The ahead-of-run kernel compilation (rltuner.warmup)."""

import subprocess
import sys

from rltuner.warmup import GROUPS, ensure_compiled, missing_groups


def test_helpers_leave_a_warm_cache():
    for threads in (1, 2):
        for group in GROUPS:
            rc = subprocess.run([sys.executable, "-m", "rltuner.warmup", group, "--threads",
                                 str(threads)], capture_output=True, text=True)  # fmt: skip
            assert rc.returncode == 0, rc.stderr
        assert missing_groups(threads) == []
        assert ensure_compiled(threads) == []  # nothing left to do, no process started


def test_bad_group_is_refused():
    rc = subprocess.run([sys.executable, "-m", "rltuner.warmup", "nonsense"],
                        capture_output=True, text=True)  # fmt: skip
    assert rc.returncode == 2 and "invalid choice" in rc.stderr


def test_compiling_is_announced_group_by_group(monkeypatch):
    """A cold cache is never silent: a first line with the expected time, then one line per
    group as its helper finishes (a failed helper is reported too, not hidden)."""
    from rltuner import warmup

    started = []

    class _Helper:
        def __init__(self, argv, **kwargs):
            self.group = argv[3]
            self.returncode = 0 if self.group == "acting" else 1
            started.append(self.group)

        def poll(self):
            return self.returncode

    monkeypatch.setattr(warmup, "missing_groups", lambda threads: ["update", "acting"])
    monkeypatch.setattr(warmup.subprocess, "Popen", _Helper)
    lines: list[str] = []
    assert ensure_compiled(0, announce=True, log=lines.append) == ["update", "acting"]
    assert started == ["update", "acting"]
    assert lines[0].startswith("compiling the numba kernels (first run only, ~")
    assert any(line.strip().startswith("acting kernels ready (") for line in lines[1:])
    assert any("update kernels not compiled ahead" in line for line in lines[1:])
    assert len(lines) == 3
    # only the groups asked for; nothing said when there is nothing to do
    lines.clear()
    assert ensure_compiled(0, announce=True, groups=("acting",), log=lines.append) == ["acting"]
    assert started[-1] == "acting" and len(lines) == 2
    monkeypatch.setattr(warmup, "missing_groups", lambda threads: [])
    lines.clear()
    assert ensure_compiled(0, announce=True, log=lines.append) == [] and lines == []


def test_cache_probe_tells_a_cold_kernel_from_a_warm_one(tmp_path, monkeypatch):
    """The probe reads numba's cache index: it must say "not cached" for a kernel never
    compiled and "cached" once it has run. (Its fallback for a changed numba answers "cached"
    for both, which this test refuses.)"""
    import importlib

    from rltuner.warmup import _has_cache

    (tmp_path / "probe_kernel.py").write_text(
        "from numba import njit\n\n@njit(cache=True)\ndef twice(x):\n    return 2 * x\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    mod = importlib.import_module("probe_kernel")
    assert _has_cache(mod.twice) is False
    assert mod.twice(21) == 42
    assert _has_cache(mod.twice) is True
