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
