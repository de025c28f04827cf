"""User reward rules: your own music-theory rule, added to r_MT beside the built-in ones.

A rule is a **pure batched function** of the state before a step::

    def my_rule(compositions, beat, action, key):
        '''compositions (B, N) int8: the classes played so far (row i holds beat[i] notes,
        the rest of the row is 0 and must be ignored); beat (B,) int64: notes already played;
        action (B,) int64: the class about to be played; key: rltuner.encoding.Key.
        Returns (B,) float64: this rule's reward for each action.'''

It must not keep hidden state (whatever it needs -- the previous note, the beat -- is in its
inputs) and must not modify its inputs (they are read-only views). Vectorise with numpy: it runs
once per environment step for the whole batch.

A rule is made available in one of two ways:

* ``--rule path/to/file.py:function`` (repeatable; ``rules = ["..."]`` in a config file): the
  file is imported and the function used, under the function's name. Importing a file runs its
  code: that is what you ask for when you name it. Rules are never loaded from a checkpoint:
  ``--resume`` of a run that used file rules needs the same ``--rule`` options again.
* an entry point in the group ``rltuner.rules`` of an installed package
  (``[project.entry-points."rltuner.rules"] neighbour_keys = "mypkg.rules:neighbour_keys"``):
  use it by naming it, ``--rule neighbour_keys``, or by giving it a weight in ``[weights]``.

Weights: ``[weights]`` in the config (or ``--weight NAME=VALUE``) sets any rule's weight, the
built-in ones included (``autocorrelation = 0`` turns that rule off); a user rule's weight
defaults to 1. The weighted user-rule values are added to r_MT, so they count in the reward
modes that use r_MT (``music_theory_all``, ``music_theory_only``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

import numpy as np

from rltuner.encoding import Key
from rltuner.errors import RltunerError
from rltuner.rewards import RULE_NAMES

__all__ = [
    "ENTRY_POINT_GROUP",
    "RuleFunction",
    "UserRule",
    "rule_name",
    "installed_rule_names",
    "load_rule",
    "load_rules",
    "builtin_weights",
    "evaluate_user_rules",
]

ENTRY_POINT_GROUP = "rltuner.rules"

RuleFunction = Callable[[np.ndarray, np.ndarray, np.ndarray, Key], np.ndarray]


class UserRule(NamedTuple):
    """A loaded user rule: its ``name`` (the weights-table key), the function, its weight and
    where it came from (``spec``: the ``--rule`` text)."""

    name: str
    fn: RuleFunction
    weight: float
    spec: str


def _split_file_spec(spec: str) -> tuple[str, str] | None:
    """``"dir/file.py:func"`` -> ``("dir/file.py", "func")``; ``None`` for an entry-point name."""
    path, sep, func = spec.rpartition(":")
    if not sep or not path.endswith(".py"):
        return None
    return path, func


def rule_name(spec: str) -> str:
    """The name a rule spec registers under (the function's name, or the entry-point name)."""
    parts = _split_file_spec(spec)
    return parts[1] if parts else spec.strip()


def installed_rule_names() -> set[str]:
    """Names of the rules installed packages register under ``rltuner.rules`` (not loaded)."""
    return {ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _load_from_file(path_text: str, func: str, spec: str) -> RuleFunction:
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise RltunerError(f"--rule {spec}: no such file {path}")
    if not func.isidentifier():
        raise RltunerError(f"--rule {spec}: {func!r} is not a function name")
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
    mod_name = f"rltuner_user_rule_{path.stem}_{digest}"
    module = sys.modules.get(mod_name)
    if module is None:
        loader_spec = importlib.util.spec_from_file_location(mod_name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise RltunerError(f"--rule {spec}: cannot import {path}")
        module = importlib.util.module_from_spec(loader_spec)
        try:
            loader_spec.loader.exec_module(module)  # runs the user's file: they named it
        except Exception as e:
            raise RltunerError(
                f"--rule {spec}: importing {path} failed ({type(e).__name__}: {e})"
            ) from e
        sys.modules[mod_name] = module
    fn = getattr(module, func, None)
    if not callable(fn):
        raise RltunerError(f"--rule {spec}: {path} defines no function {func!r}")
    return fn


def _load_entry_point(name: str) -> RuleFunction:
    eps = [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not eps:
        installed = ", ".join(sorted(installed_rule_names())) or "none installed"
        raise RltunerError(
            f"unknown rule {name!r}: not a built-in rule, not a file rule (path/to/file.py:"
            f"function) and not an installed '{ENTRY_POINT_GROUP}' entry point ({installed})"
        )
    try:
        fn = eps[0].load()
    except Exception as e:
        raise RltunerError(
            f"rule {name!r}: loading entry point {eps[0].value} failed ({type(e).__name__}: {e})"
        ) from e
    if not callable(fn):
        raise RltunerError(f"rule {name!r}: entry point {eps[0].value} is not a function")
    return fn


def load_rule(spec: str, weight: float = 1.0) -> UserRule:
    """Load one rule from ``path/to/file.py:function`` or an installed entry-point name."""
    parts = _split_file_spec(spec)
    name = rule_name(spec)
    if name in RULE_NAMES:
        raise RltunerError(
            f"--rule {spec}: {name!r} is the name of a built-in rule; rename the function "
            "(built-in rules are weighted in [weights], not loaded)"
        )
    fn = _load_from_file(parts[0], parts[1], spec) if parts else _load_entry_point(name)
    return UserRule(name, fn, float(weight), spec)


def load_rules(specs: Iterable[str], weights: Mapping[str, float] | None = None) -> list[UserRule]:
    """The user rules of a configuration: every spec of ``specs``, plus installed entry-point
    rules that ``weights`` names (so ``[weights] my_rule = 0.5`` is enough to use an installed
    rule). Weights come from ``weights`` (default 1). Duplicate names are an error."""
    weights = dict(weights or {})
    rules: list[UserRule] = []
    for spec in specs:
        name = rule_name(spec)
        if any(r.name == name for r in rules):
            raise RltunerError(f"two user rules are named {name!r}; rule names must be unique")
        rules.append(load_rule(spec, weights.get(name, 1.0)))
    named = {r.name for r in rules}
    for name in weights:
        if name not in RULE_NAMES and name not in named:
            rules.append(load_rule(name, weights[name]))
    return rules


def builtin_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    """The part of a weights table that concerns the built-in rules."""
    return {k: float(v) for k, v in (weights or {}).items() if k in RULE_NAMES}


def evaluate_user_rules(
    rules: list[UserRule],
    compositions: np.ndarray,
    beat: np.ndarray,
    action: np.ndarray,
    key: Key,
) -> np.ndarray:
    """Every rule's values for one step, ``(B, len(rules))`` float64 (unweighted).

    The inputs are passed as read-only views. A rule that raises, or returns anything but
    ``B`` finite numbers, stops with an :class:`RltunerError` naming it."""
    b = action.shape[0]
    out = np.zeros((b, len(rules)), dtype=np.float64)
    views = []
    for a in (compositions, beat, action):
        v = a.view()
        v.flags.writeable = False
        views.append(v)
    for j, rule in enumerate(rules):
        try:
            values = rule.fn(views[0], views[1], views[2], key)
        except Exception as e:
            raise RltunerError(
                f"user rule {rule.name!r} ({rule.spec}) failed: {type(e).__name__}: {e}"
            ) from e
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (b,):
            raise RltunerError(
                f"user rule {rule.name!r} returned shape {values.shape}; expected ({b},), "
                "one value per composition"
            )
        if not np.isfinite(values).all():
            raise RltunerError(f"user rule {rule.name!r} returned NaN or infinite values")
        out[:, j] = values
    return out
