"""Sweeps: many tuning runs from one SPEC file, scheduled by Ray Tune, on one machine or a cluster.

A SPEC is a TOML file::

    [base]                      # a tuner configuration: the keys of `rltuner tune --config`
    steps = 200_000
    algorithm = "q"

    [space]                     # what varies: any TunerConfig field
    seed = [0, 1, 2]            # a list is a grid: every value is tried
    algorithm = ["q", "psi"]
    reward_scaler = { uniform = [0.5, 4.0] }     # a table is a random distribution:
    learning_rate = { loguniform = [1e-4, 1e-2] }   # uniform, loguniform, randint (upper
    weights.autocorrelation = [0, 1]                # bound excluded) or choice = [...]

    [sweep]
    samples = 1                 # random draws per grid point (only with random dimensions)
    seed = 0                    # seed of those draws: the same SPEC gives the same trials

    [evaluation]                # run on every finished trial (as `rltuner evaluate`)
    compositions = 10_000
    seed = 0

The trials (the grid's product, ``samples`` random draws per grid point) are expanded and every
one is validated as a :class:`~rltuner.tuner.TunerConfig` before anything starts. Each trial is
an ordinary run directory, ``OUT/trials/NNN_key=value_…/``, trained by ``RLTuner.train`` (its
checkpoints are rltuner's own atomic ones) and then evaluated (``evaluation.json/.md/.csv``).
Ray Tune runs the trials: each trial reports its evaluation windows (so ``--scheduler asha``
can stop poor trials early), a crashed trial is retried from its run directory's last checkpoint
(``--max-failures``), and ``--resume OUT`` continues an interrupted sweep: finished trials are
kept, the others continue from their checkpoints. The results are written by
:mod:`rltuner.sweep_results`.

``OUT`` holds ``spec.toml`` (the SPEC as given), ``trials.json`` (the expanded trials),
``sweep.json`` (the sweep's options), ``status.json`` (trials stopped early or failed),
``trials/``, ``ray/`` (Ray Tune's own experiment folders) and the results.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import importlib.util
import itertools
import json
import math
import os
import re
import threading
import time
import tomllib
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rltuner.checkpoint import atomic_write_text
from rltuner.errors import RltunerError
from rltuner.options import option
from rltuner.sweep_results import collect, write_results
from rltuner.tuner import TunerConfig, has_checkpoint

__all__ = [
    "DISTRIBUTIONS",
    "WINDOW_METRICS",
    "INSTALL_HINT",
    "Dimension",
    "EvaluationSpec",
    "SweepSpec",
    "Trial",
    "SweepConfig",
    "load_spec",
    "parse_spec",
    "expand_trials",
    "trial_states",
    "run_sweep",
    "collect_results",
    "is_sweep_dir",
]

DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice")
# what every algorithm's evaluation windows report (metrics.jsonl keys); --metric picks one
WINDOW_METRICS = (
    "eval/log_p_plus_music_theory", "eval/music_theory_reward", "eval/note_rnn_log_p",
    "train/reward", "train/music_theory_reward", "train/note_rnn_log_p",
)  # fmt: skip
INSTALL_HINT = (
    'rltuner sweep needs Ray Tune: pip install "rltuner[sweep]" (in a checkout: '
    'pip install -e ".[sweep]")'
)
SCHEDULERS = ("fifo", "asha")
_SPEC_TABLES = ("base", "space", "sweep", "evaluation")
_PATH_FIELDS = ("note_rnn", "primer")


# ---------------------------------------------------------------------- the SPEC
@dataclass(frozen=True)
class Dimension:
    """One swept setting. ``key`` is a TunerConfig field or ``weights.RULE``; ``kind`` is
    ``grid`` (every value of ``values``) or a distribution of :data:`DISTRIBUTIONS`
    (``values``: ``(low, high)``, or the options of ``choice``)."""

    key: str
    kind: str
    values: tuple

    def sample(self, rng: np.random.Generator) -> Any:
        if self.kind == "uniform":
            return float(rng.uniform(*self.values))
        if self.kind == "loguniform":
            lo, hi = self.values
            return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        if self.kind == "randint":
            return int(rng.integers(*self.values))
        if self.kind == "choice":
            return self.values[int(rng.integers(len(self.values)))]
        raise ValueError(f"{self.key}: a grid dimension is not sampled")


@dataclass
class EvaluationSpec:
    """The evaluation of every finished trial (``rltuner evaluate RUN``)."""

    compositions: int = option(10_000, help="compositions sampled per trial")
    seed: int = option(0, help="seed of the sampling (the same random numbers for every trial)")


@dataclass
class SweepSpec:
    """A parsed SPEC file: ``base`` tuner settings, the ``space`` swept over, ``samples``
    random draws per grid point (seeded by ``seed``) and the ``evaluation``."""

    path: Path
    base: dict[str, Any]
    space: list[Dimension]
    evaluation: EvaluationSpec = field(default_factory=EvaluationSpec)
    samples: int = 1
    seed: int = 0


@dataclass
class Trial:
    """One run of a sweep: ``settings`` (swept key -> value) applied to the base gives
    ``config`` (a complete :class:`TunerConfig` dict); the run lives in ``trials/NAME``."""

    index: int
    name: str
    settings: dict[str, Any]
    config: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_KIND_TEXT = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
              "list": "a list of strings", "dict": "a table of rule = weight"}  # fmt: skip


def _field_kinds() -> dict[str, str]:
    """TunerConfig field -> int | float | str | bool | list | dict."""
    out = {}
    for name, tp in typing.get_type_hints(TunerConfig).items():
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            tp = next(a for a in typing.get_args(tp) if a is not type(None))
            origin = typing.get_origin(tp)
        out[name] = {dict: "dict", list: "list"}.get(origin) or tp.__name__
    return out


def _value(where: str, kind: str, v: Any) -> Any:
    ok = {
        "int": isinstance(v, int) and not isinstance(v, bool),
        "float": isinstance(v, int | float) and not isinstance(v, bool),
        "str": isinstance(v, str),
        "bool": isinstance(v, bool),
        "list": isinstance(v, list) and all(isinstance(x, str) for x in v),
    }.get(kind, False)
    if not ok:
        raise RltunerError(f"{where} must be {_KIND_TEXT[kind]}, got {v!r}")
    return float(v) if kind == "float" else v


def _unknown(path: Path, where: str, name: str, valid: typing.Iterable[str]) -> RltunerError:
    close = difflib.get_close_matches(name, list(valid), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return RltunerError(f"{path}: unknown field {name!r} in [{where}]{hint}")


def _check_base(path: Path, base: Any, kinds: dict[str, str]) -> dict[str, Any]:
    if not isinstance(base, dict):
        raise RltunerError(f"{path}: [base] must be a table of tuner settings")
    out = {}
    for name, v in base.items():
        if name not in kinds:
            raise _unknown(path, "base", name, kinds)
        if kinds[name] == "dict":
            if not isinstance(v, dict):
                raise RltunerError(f"{path}: base.{name} must be {_KIND_TEXT['dict']}, got {v!r}")
            out[name] = {k: _value(f"{path}: base.{name}.{k}", "float", w) for k, w in v.items()}
        else:
            out[name] = _value(f"{path}: base.{name}", kinds[name], v)
    return out


def _dimension(path: Path, key: str, kind: str, value: Any) -> Dimension:
    where = f"{path}: space.{key}"
    if isinstance(value, list):
        if not value:
            raise RltunerError(f"{where} is an empty list: a grid needs at least one value")
        if kind == "list" and not all(isinstance(v, list) for v in value):
            raise RltunerError(f'{where}: a grid of rule lists, e.g. [[], ["my.py:rule"]]')
        return Dimension(key, "grid", tuple(_value(f"{where} value", kind, v) for v in value))
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in DISTRIBUTIONS:
        dist, args = next(iter(value.items()))
        if dist == "choice":
            if not isinstance(args, list) or not args:
                raise RltunerError(f"{where}: choice needs a non-empty list of values")
            return Dimension(key, dist, tuple(_value(f"{where} value", kind, v) for v in args))
        numbers = isinstance(args, list) and all(
            isinstance(a, int | float) and not isinstance(a, bool) for a in args
        )
        if not numbers or len(args) != 2:
            raise RltunerError(f"{where}: {dist} needs [low, high], got {args!r}")
        lo, hi = args
        if not lo < hi:
            raise RltunerError(f"{where}: {dist} needs low < high, got [{lo}, {hi}]")
        if dist == "randint":
            if kind not in ("int", "float") or not all(isinstance(a, int) for a in args):
                raise RltunerError(f"{where}: randint needs an integer field and integer bounds")
        elif kind != "float":
            hint = " (use randint)" if kind == "int" else ""
            raise RltunerError(f"{where}: {dist} draws real numbers but {key} is "
                               f"{_KIND_TEXT[kind]}{hint}")  # fmt: skip
        elif dist == "loguniform" and lo <= 0:
            raise RltunerError(f"{where}: loguniform needs low > 0, got {lo}")
        return Dimension(key, dist, (lo, hi))
    raise RltunerError(
        f"{where}: expected a list of values (a grid) or a distribution such as "
        f"{{ uniform = [0.5, 4.0] }} ({', '.join(DISTRIBUTIONS)}), got {value!r}; "
        "a fixed value belongs in [base]"
    )


def parse_spec(data: dict[str, Any], path: str | os.PathLike = "SPEC") -> SweepSpec:
    """Check a SPEC's tables and turn them into a :class:`SweepSpec`; any problem raises
    :class:`RltunerError` with one line naming ``path`` and the offending entry."""
    path = Path(path)
    for name in data:
        if name not in _SPEC_TABLES:
            raise _unknown(path, "top level", name, _SPEC_TABLES)
    kinds = _field_kinds()
    base = _check_base(path, data.get("base", {}), kinds)
    space = data.get("space")
    if not isinstance(space, dict) or not space:
        raise RltunerError(f"{path}: [space] is missing or empty: name at least one setting to "
                           "sweep, e.g. seed = [0, 1, 2]")  # fmt: skip
    dims: list[Dimension] = []
    for name, value in space.items():
        head, _, rule = name.partition(".")  # "weights.autocorrelation" given as one key
        if rule and head == "weights":
            value, name = {rule: value}, head
        if name not in kinds:
            raise _unknown(path, "space", name, kinds)
        if kinds[name] == "dict":
            if not isinstance(value, dict) or not value:
                raise RltunerError(f"{path}: space.{name} must name rules, e.g. "
                                   f"{name}.autocorrelation = [0, 1]")  # fmt: skip
            dims += [_dimension(path, f"{name}.{r}", "float", v) for r, v in value.items()]
        else:
            dims.append(_dimension(path, name, kinds[name], value))
    keys = [d.key for d in dims]
    if len(set(keys)) != len(keys):
        raise RltunerError(f"{path}: a setting appears twice in [space]")
    sweep = data.get("sweep", {})
    ev = data.get("evaluation", {})
    for table, d, valid in (("sweep", sweep, ("samples", "seed")),
                            ("evaluation", ev, ("compositions", "seed"))):  # fmt: skip
        if not isinstance(d, dict):
            raise RltunerError(f"{path}: [{table}] must be a table")
        for k, v in d.items():
            if k not in valid:
                raise _unknown(path, table, k, valid)
            _value(f"{path}: {table}.{k}", "int", v)
    samples, seed = int(sweep.get("samples", 1)), int(sweep.get("seed", 0))
    evaluation = EvaluationSpec(**ev)
    if samples < 1 or evaluation.compositions < 1:
        raise RltunerError(f"{path}: sweep.samples and evaluation.compositions must be at least 1")
    if samples > 1 and all(d.kind == "grid" for d in dims):
        raise RltunerError(f"{path}: sweep.samples = {samples} would repeat identical trials "
                           "(no random dimension); sweep seed instead")  # fmt: skip
    return SweepSpec(path, base, dims, evaluation, samples, seed)


def load_spec(path: str | os.PathLike) -> SweepSpec:
    """Read and check a SPEC TOML file."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise RltunerError(f"{p}: no such SPEC file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RltunerError(f"{p}: cannot read the SPEC ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise RltunerError(f"{p}: not valid TOML ({e})") from None
    return parse_spec(data, p)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "+".join(Path(x.rpartition(":")[0] or x).stem for x in v) or "none"
    return str(v)


def _trial_name(index: int, settings: dict[str, Any]) -> str:
    parts = [f"{k.removeprefix('weights.')}={_fmt(v)}" for k, v in settings.items()]
    name = re.sub(r"[^A-Za-z0-9._=+-]", "-", "_".join([f"{index:03d}", *parts]))
    return name[:120]


def _absolute(config: dict[str, Any]) -> dict[str, Any]:
    """Relative file paths are relative to where `rltuner sweep` runs; trials run elsewhere."""
    for name in _PATH_FIELDS:
        if isinstance(config.get(name), str):
            config[name] = str(Path(config[name]).expanduser().resolve())
    rules = []
    for r in config.get("rules", []):
        file, sep, func = r.rpartition(":")
        rules.append(f"{Path(file).resolve()}:{func}" if sep and file.endswith(".py") else r)
    config["rules"] = rules
    return config


def expand_trials(spec: SweepSpec, defaults: dict[str, Any] | None = None,
                  overrides: dict[str, Any] | None = None) -> list[Trial]:  # fmt: skip
    """Every trial of ``spec``: the grid's product in the SPEC's order, ``samples`` random
    draws per grid point (one generator seeded by ``spec.seed``, so the same SPEC gives the
    same trials). A trial's config is ``defaults``, then ``[base]``, then its settings, then
    ``overrides``; each is validated as a :class:`TunerConfig` (an invalid one raises
    :class:`RltunerError` naming the SPEC and the trial)."""
    grid = [d for d in spec.space if d.kind == "grid"]
    rng = np.random.default_rng(spec.seed)
    trials: list[Trial] = []
    checked_rules: set[tuple[str, ...]] = set()
    for combo in itertools.product(*(d.values for d in grid)):
        point = dict(zip((d.key for d in grid), combo, strict=True))
        for _ in range(spec.samples):
            settings = {d.key: point[d.key] if d.kind == "grid" else d.sample(rng)
                        for d in spec.space}  # fmt: skip
            config = {**(defaults or {}), **json.loads(json.dumps(spec.base))}
            for k, v in settings.items():
                head, _, rule = k.partition(".")
                if rule:
                    config[head] = {**config.get(head, {}), rule: v}
                else:
                    config[k] = v
            config.update(overrides or {})
            name = _trial_name(len(trials), settings)
            try:
                cfg = TunerConfig.from_dict(_absolute(config))
            except (RltunerError, ValueError, TypeError) as e:
                raise RltunerError(f"{spec.path}: trial {name}: {e}") from None
            for p in (cfg.note_rnn, cfg.primer):
                if p is not None and not Path(p).is_file():
                    raise RltunerError(f"{spec.path}: trial {name}: no such file {p}")
            if cfg.rules and tuple(cfg.rules) not in checked_rules:
                from rltuner.plugins import load_rules

                try:
                    load_rules(cfg.rules, cfg.weights)
                except RltunerError as e:
                    raise RltunerError(f"{spec.path}: trial {name}: {e}") from None
                checked_rules.add(tuple(cfg.rules))
            trials.append(Trial(len(trials), name, settings, cfg.to_dict()))
    return trials


# ---------------------------------------------------------------------- options
@dataclass
class SweepConfig:
    """Run a sweep file's trials on Ray Tune (local Ray, or a cluster with --address)."""

    address: str | None = option(
        None,
        help="Ray cluster to use: auto, HOST:PORT or ray://HOST:PORT; unset: start a local Ray",
    )
    num_cpus: int = option(0, help="CPUs of the local Ray (0 = every CPU of this machine)")
    max_concurrent: int = option(
        0, help="trials running at once (0 = as many as the CPUs and GPUs allow)"
    )
    cpus_per_trial: float = option(1.0, help="CPUs Ray reserves for each trial")
    gpus_per_trial: float = option(
        -1.0, help="GPUs Ray reserves for each trial (-1 = 1 with --device cuda, else 0)"
    )
    device: str | None = option(
        None, help="device of every trial (cpu, cuda, cuda:1); unset: the sweep file's"
    )
    scheduler: str = option(
        "fifo", help="fifo (every trial runs to the end) | asha (stop poor trials early)"
    )
    metric: str = option(
        "eval/log_p_plus_music_theory", help="window metric ASHA compares (a metrics.jsonl key)"
    )
    mode: str = option("max", help="max | min: whether a larger --metric is better")
    grace_windows: int = option(
        2, help="ASHA: evaluation windows every trial runs before it may be stopped"
    )
    max_failures: int = option(2, help="retries of a crashed trial, each from its last checkpoint")
    object_store_mb: int = option(
        100, help="object store of the local Ray in MB (trials pass no large data)"
    )

    def validate(self) -> None:
        if self.scheduler not in SCHEDULERS:
            raise RltunerError(f"--scheduler must be one of {', '.join(SCHEDULERS)}, "
                               f"got {self.scheduler!r}")  # fmt: skip
        if self.metric not in WINDOW_METRICS:
            raise RltunerError(f"--metric must be one of {', '.join(WINDOW_METRICS)}, "
                               f"got {self.metric!r}")  # fmt: skip
        if self.mode not in ("max", "min"):
            raise RltunerError(f"--mode must be max or min, got {self.mode!r}")
        for name in ("num_cpus", "max_concurrent", "max_failures"):
            if getattr(self, name) < 0:
                raise RltunerError(f"--{name.replace('_', '-')} must be 0 or more")
        if self.cpus_per_trial <= 0 or self.grace_windows < 1 or self.object_store_mb < 80:
            raise RltunerError("--cpus-per-trial must be > 0, --grace-windows >= 1 and "
                               "--object-store-mb >= 80")  # fmt: skip

    @property
    def gpus(self) -> float:
        if self.gpus_per_trial >= 0:
            return self.gpus_per_trial
        return 1.0 if (self.device or "cpu").startswith("cuda") else 0.0


# ---------------------------------------------------------------------- sweep folder state
def is_sweep_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / "trials.json").is_file()


def read_trials(out: Path) -> list[Trial]:
    try:
        return [Trial(**t) for t in json.loads((out / "trials.json").read_text())["trials"]]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RltunerError(f"{out}: not a readable sweep folder (trials.json: {e})") from None


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def trial_states(out: Path, trials: list[Trial]) -> dict[str, str]:
    """Trial name -> ``finished`` (evaluated), ``stopped`` (by the scheduler), ``error``
    (failed past its retries), ``running`` (has a checkpoint) or ``pending``."""
    status = _read_json(out / "status.json", {})
    states = {}
    for t in trials:
        run = out / "trials" / t.name
        if (run / "evaluation.json").is_file():
            states[t.name] = "finished"
        elif t.name in status:
            states[t.name] = status[t.name]["status"]
        elif has_checkpoint(run):
            states[t.name] = "running"
        else:
            states[t.name] = "pending"
    return states


def _update_status(out: Path, name: str, entry: dict[str, Any] | None) -> None:
    status = _read_json(out / "status.json", {})
    if entry is None:
        status.pop(name, None)
    else:
        status[name] = entry
    atomic_write_text(out / "status.json", json.dumps(status, indent=2) + "\n")


def _require_ray() -> None:
    if importlib.util.find_spec("ray") is None or importlib.util.find_spec("ray.tune") is None:
        raise RltunerError(INSTALL_HINT)


def _make_callback(out: Path, sweep_trials: list[Trial], quiet: bool):
    from ray.tune import Callback

    total = len(sweep_trials)

    def say(text: str) -> None:
        if not quiet:
            print(text, flush=True)

    class _Progress(Callback):
        """Records trials stopped early or failed in status.json and prints one line per
        finished trial."""

        def on_trial_start(self, iteration, trials, trial, **info):
            say(f"started  {trial.config['trial']['name']}")

        def on_trial_complete(self, iteration, trials, trial, **info):
            name = trial.config["trial"]["name"]
            ev = _read_json(out / "trials" / name / "evaluation.json", None)
            if ev is None:  # ended by the scheduler before its last step
                step = (trial.last_result or {}).get("step", 0)
                _update_status(out, name, {"status": "stopped", "step": step})
                say(f"stopped  {name} at step {step:,} (scheduler)")
                return
            m = ev["models"][0]
            rows = sum(m["matches_paper_q"].values())
            done = sum(s == "finished" for s in trial_states(out, sweep_trials).values())
            say(f"finished {name}: {rows}/11 rows vs the paper's Q, KL "
                f"{m['extra']['kl_to_note_rnn']:.3f} ({done}/{total} done)")  # fmt: skip

        def on_trial_recover(self, iteration, trials, trial, **info):
            say(f"retrying {trial.config['trial']['name']} from its last checkpoint: "
                f"{_error_line(trial)}")  # fmt: skip

        def on_trial_error(self, iteration, trials, trial, **info):
            name, err = trial.config["trial"]["name"], _error_line(trial)
            _update_status(out, name, {"status": "error", "error": err})
            say(f"FAILED   {name}: {err}")

    return _Progress()


def _error_line(trial) -> str:
    """The last line of a failed trial's error file (a text traceback; never unpickled)."""
    path = getattr(trial, "error_file", None)
    try:
        lines = [x for x in Path(path).read_text().splitlines() if x.strip()] if path else []
    except OSError:
        lines = []
    return lines[-1].strip()[:300] if lines else "unknown error"


def collect_results(out: str | os.PathLike) -> dict[str, Any]:
    """The results of the sweep in folder ``out`` (:func:`rltuner.sweep_results.collect`)."""
    out = Path(out)
    trials = read_trials(out)
    return collect(out, load_spec(out / "spec.toml"), trials, trial_states(out, trials))


def run_sweep(
    out: str | os.PathLike,
    spec_path: str | os.PathLike | None = None,
    options: SweepConfig | None = None,
    *,
    resume: bool = False,
    quiet: bool = False,
) -> dict[str, Any]:
    """Run (or with ``resume`` continue) the sweep in ``out`` and write its results.

    A new sweep reads ``spec_path``, validates every trial, writes ``out/spec.toml``,
    ``trials.json`` and ``sweep.json``, then runs the trials on Ray Tune; ``resume`` reads
    them back and runs the trials that are neither finished nor stopped by the scheduler (a
    failed trial is tried again with a fresh retry budget). Uses the running Ray when this
    process has one, else connects to ``options.address`` or starts a local Ray. Returns the
    collected results (:func:`collect_results`)."""
    _require_ray()
    options = options or SweepConfig()
    options.validate()
    out = Path(out).resolve()
    if resume:
        if not is_sweep_dir(out):
            raise RltunerError(f"{out}: no sweep to resume (no trials.json)")
        trials = read_trials(out)
        spec = load_spec(out / "spec.toml")
        for name, entry in _read_json(out / "status.json", {}).items():
            if entry.get("status") == "error":  # failed trials get a fresh retry budget
                _update_status(out, name, None)
    else:
        if spec_path is None:
            raise RltunerError("sweep needs a SPEC file (or --resume SWEEP_DIR)")
        spec = load_spec(spec_path)
        defaults = {"threads": max(1, min(2, int(options.cpus_per_trial))), "report": False}
        overrides = {"device": options.device} if options.device else {}
        trials = expand_trials(spec, defaults, overrides)
        if is_sweep_dir(out):
            raise RltunerError(f"{out}: already holds a sweep; continue it with rltuner sweep "
                               f"--resume {out}, or choose another --out")  # fmt: skip
        try:
            (out / "trials").mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RltunerError(f"{out}: cannot create the sweep folder ({e.strerror})") from None
        atomic_write_text(out / "spec.toml", Path(spec_path).read_text())
        atomic_write_text(out / "sweep.json", json.dumps(dataclasses.asdict(options), indent=2))
        atomic_write_text(out / "trials.json", json.dumps(
            {"spec": str(Path(spec_path).resolve()), "trials": [t.to_dict() for t in trials]},
            indent=2) + "\n")  # fmt: skip
    states = trial_states(out, trials)
    todo = [t for t in trials if states[t.name] not in ("finished", "stopped")]
    if not quiet:
        kept = len(trials) - len(todo)
        print(f"sweep {out}: {len(trials)} trials" + (f", {kept} finished kept" if kept else ""),
              flush=True)  # fmt: skip
    wall = {"ray_start": 0.0, "tune": 0.0}
    if todo:
        with _environment_defaults(TUNE_ENVIRONMENT):
            wall.update(_tune(out, spec, todo, trials, options, quiet))
    t0 = time.perf_counter()
    results = collect_results(out)
    paths = write_results(out, results)
    wall["results"] = time.perf_counter() - t0
    results["timing"] = wall
    if not quiet:
        states = trial_states(out, trials)
        counts = {s: sum(v == s for v in states.values()) for s in sorted(set(states.values()))}
        print(f"{', '.join(f'{n} {s}' for s, n in counts.items())}; results: "
              f"{paths['csv'].parent}/results.csv|json|md, plots/", flush=True)  # fmt: skip
    return results


#: Ray Tune settings for the sweep's run, read from the environment (a user's own values win):
#: our own one line per trial instead of Tune's tables; and no automatic loggers, because Tune's
#: TensorBoard logger would import torch in the driver (~1 s before the first trial can start)
#: to repeat what every trial writes itself (Tune's CSV and JSON loggers are passed instead).
TUNE_ENVIRONMENT = {"RAY_AIR_NEW_OUTPUT": "0", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}


@contextlib.contextmanager
def _environment_defaults(values: dict[str, str]) -> Iterator[None]:
    """Set the variables of ``values`` that are not set, for the ``with`` block only."""
    added = [k for k in values if k not in os.environ]
    os.environ.update({k: values[k] for k in added})
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def _import_ahead() -> None:
    """Import what the driver needs after ``ray.init`` (Ray Tune ~0.6 s, matplotlib for the
    result plots ~0.2 s) while ``ray.init`` waits for the local Ray's processes to start."""
    try:
        import ray.tune  # noqa: F401

        from rltuner.report import _pyplot

        _pyplot()
    except Exception:  # noqa: BLE001 -- the main thread imports them again and reports errors
        pass


def _tune(out: Path, spec: SweepSpec, todo: list[Trial], trials: list[Trial],
          options: SweepConfig, quiet: bool) -> dict[str, float]:  # fmt: skip
    import ray

    importer = threading.Thread(target=_import_ahead, daemon=True)
    importer.start()
    if any(TunerConfig.from_dict(t.config).device == "cpu" for t in todo):
        from rltuner.warmup import ensure_compiled

        # compile once here, not in every trial at once
        ensure_compiled(max(t.config["threads"] for t in todo), announce=not quiet)
    t0 = time.perf_counter()
    started = False
    if not ray.is_initialized():
        if options.address:
            ray.init(address=options.address, log_to_driver=False, logging_level="WARNING")
        else:
            # "local": a new Ray of our own, even when a `ray start` cluster runs here. No
            # workers are started ahead: Tune's trial actors carry their own runtime
            # environment and cannot use them (starting them slowed ray.init by 0.3-1 s)
            ray.init(address="local", num_cpus=options.num_cpus or os.cpu_count(),
                     include_dashboard=False,
                     object_store_memory=options.object_store_mb * 2**20, log_to_driver=False,
                     logging_level="WARNING",
                     _system_config={"enable_worker_prestart": False,
                                     "prestart_worker_first_driver": False})  # fmt: skip
        started = True
    importer.join()
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    from rltuner.sweep_trial import run_trial

    ray_start = time.perf_counter() - t0
    scheduler = None
    if options.scheduler == "asha":
        from ray.tune.schedulers import ASHAScheduler

        cfgs = [t.config for t in trials]
        scheduler = ASHAScheduler(
            time_attr="step", metric=options.metric, mode=options.mode,
            max_t=max(c["steps"] for c in cfgs),
            grace_period=options.grace_windows * min(c["eval_every"] for c in cfgs),
        )  # fmt: skip
    attempt = 1 + sum(1 for p in (out / "ray").glob("tune-*")) if (out / "ray").is_dir() else 1
    tuner = tune.Tuner(
        tune.with_resources(run_trial, {"cpu": options.cpus_per_trial, "gpu": options.gpus}),
        param_space={
            "trial": tune.grid_search([t.to_dict() for t in todo]),
            "evaluation": dataclasses.asdict(spec.evaluation),
            "sweep_dir": str(out),
        },
        tune_config=tune.TuneConfig(
            scheduler=scheduler,
            max_concurrent_trials=options.max_concurrent or None,
            reuse_actors=True,  # a worker runs trial after trial: no process start, no imports
            trial_name_creator=_ray_trial_name,
            trial_dirname_creator=_ray_trial_name,
        ),
        run_config=tune.RunConfig(
            name=f"tune-{attempt}",
            storage_path=str(out / "ray"),
            failure_config=tune.FailureConfig(max_failures=options.max_failures),
            callbacks=[
                _make_callback(out, trials, quiet),
                CSVLoggerCallback(),
                JsonLoggerCallback(),
            ],
            verbose=0,
        ),
    )
    t1 = time.perf_counter()
    try:
        tuner.fit()
    finally:
        if started:
            ray.shutdown()
    return {"ray_start": ray_start, "tune": time.perf_counter() - t1}


def _ray_trial_name(trial) -> str:
    return trial.config["trial"]["name"]
