"""The CPU paths work in an install without PyTorch (torch is the optional ``[torch]`` extra).

A child process runs with torch made unimportable (a ``sitecustomize`` import blocker, as if the
package were not installed) and uses the command line as a user would: tune with Q and G, then
generate, evaluate, report and render; the torch-only features answer with one line naming the
extra.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

BLOCKER = """
import sys

class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None

sys.meta_path.insert(0, _NoTorch())
"""

SCRIPT = """
import contextlib, io, sys
from rltuner.cli import main

def cli(*args):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, err.getvalue()

model, out = sys.argv[1], sys.argv[2]
tiny = ["--note-rnn", model, "--steps", "1024", "--eval-every", "512", "--memory-size", "2000",
        "--exploration-period", "512", "--final-compositions", "32", "--num-samples", "2",
        "--no-report", "--quiet"]
for alg in ("q", "g"):
    code, err = cli("tune", "--algorithm", alg, "--out", f"{out}/{alg}", *tiny)
    assert code == 0, err
for name, path in (("q", f"{out}/q"), ("g", f"{out}/g"), ("untuned", model)):
    code, err = cli("generate", "--model", path, "-n", "3", "--length", "16",
                    "--out", f"{out}/gen_{name}", "--quiet")
    assert code == 0, err
code, err = cli("evaluate", f"{out}/q", f"{out}/g", "--compositions", "64", "--quiet")
assert code == 0, err
code, err = cli("report", f"{out}/g", "--compare", f"{out}/q", "--quiet")
assert code == 0, err
code, err = cli("render", f"{out}/q/samples", "--out", f"{out}/wav", "--synth", "builtin")
assert code == 0, err
assert "torch" not in sys.modules
with contextlib.redirect_stdout(io.StringIO()) as help_text:  # the group's help needs no torch
    try:
        main(["note-rnn", "--help"])
    except SystemExit as e:
        assert e.code == 0, e
assert "train" in help_text.getvalue() and "import" in help_text.getvalue()
# the torch-only features: one line that says how to install torch
for args in (["note-rnn", "train", "--out", f"{out}/rnn"],
             ["tune", "--device", "cuda", "--out", f"{out}/cuda", *tiny]):
    code, err = cli(*args)
    assert code == 2 and err.count("\\n") == 1, (args, code, err)
    assert "rltuner[torch]" in err and "download.pytorch.org/whl/cpu" in err, err
print("NO-TORCH-OK")
"""


def _run_without_torch(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    )
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=900, env=env
    )


def test_torch_is_blocked_in_the_child(tmp_path):
    p = _run_without_torch(tmp_path, "-c", "import torch")
    assert p.returncode != 0 and "blocked by the test" in p.stderr


def test_cpu_paths_run_without_torch(tmp_path, tiny_note_rnn):
    out = tmp_path / "out"
    script = tmp_path / "no_torch.py"
    script.write_text(textwrap.dedent(SCRIPT))
    p = _run_without_torch(tmp_path, str(script), str(tiny_note_rnn), str(out))
    assert p.returncode == 0 and "NO-TORCH-OK" in p.stdout, p.stdout[-2000:] + p.stderr[-4000:]
    for alg in ("q", "g"):
        assert (out / alg / "tuned.safetensors").exists()
        assert (out / alg / "stats.json").exists()
    assert (out / "g" / "report.html").stat().st_size > 10_000
    assert len(list((out / "wav").glob("*.wav"))) == 2
    for name in ("q", "g", "untuned"):
        assert len(list((out / f"gen_{name}").glob("*.mid"))) == 3
