"""The ``rltuner`` command: a thin layer over the Python API.

Each subcommand's options come from a typed config dataclass; a field's inline comment is its
``--help`` text, so defaults are documented once, in the dataclass. Errors the user can fix
print one sentence and exit with code 2 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rltuner.conditioning import CHORD_STEPS_HELP
from rltuner.encoding import Key
from rltuner.errors import RltunerError
from rltuner.options import check_int, check_range, field_help, option
from rltuner.warmup import ensure_compiled

__all__ = [
    "main",
    "GenerateConfig",
    "DataBuildConfig",
    "NoteRNNTrainCLIConfig",
    "NoteRNNImportConfig",
    "EvaluateConfig",
    "RenderConfig",
    "ReportConfig",
]


# ---------------------------------------------------------------------- configs
# A field's help is its --help text (rltuner.options.option); __post_init__ checks every value,
# so the API and the CLI refuse the same inputs with the same sentence.
_SYNTHS = ("auto", "fluidsynth", "builtin")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise RltunerError(
            f"--{name.replace('_', '-')} {value!r}: choose from {', '.join(choices)}"
        )


def _check_key(text: str) -> None:
    try:
        Key.parse(text)
    except ValueError as e:
        raise RltunerError(f"--key: {e}") from None


# a tuned model's prior travels with it (embedded); this supplies one that was left out
_NOTE_RNN_HELP = (
    "the Note RNN a tuned model was tuned from, when the model does not embed it and its "
    "recorded file is gone (checked against the recorded hash)"
)


_CHORDS_HELP = (
    'chord progression to play over, e.g. "C G Am F" or "C G | Am F" (several: separate them '
    "with ';'); unset: a chord-tuned model's own"
)


@dataclass
class GenerateConfig:
    """Sample melodies from a Note RNN or a tuned model."""

    model: str | None = option(
        None, help="Note RNN or tuned .safetensors, or a run folder; unset: the bundled Note RNN"
    )
    n: int = option(10, help="number of melodies")
    length: int = option(32, help="steps (16th notes) per melody")
    seed: int = option(0, help="random seed (same seed, same files)")
    out: str = option("generated", help="output folder")
    primer: str | None = option(
        None, help="MIDI file whose first melody primes every sample; unset: a random first note"
    )
    temperature: float = option(1.0, help="softmax temperature (> 0)")
    most_probable: bool = option(False, help="take the most probable note instead of sampling")
    qpm: float = option(80.0, help="tempo of the written MIDI files (quarter notes per minute)")
    program: int = option(0, help="General MIDI program, 0-127 (0 = piano)")
    wav: bool = option(
        False, help="also write a WAV next to each MIDI (FluidSynth if installed, else built-in)"
    )
    note_rnn: str | None = option(None, help=_NOTE_RNN_HELP)
    chords: str | None = option(None, help=_CHORDS_HELP + "; writes a chord track too")
    chord_steps: int = option(8, help=CHORD_STEPS_HELP)
    chord_style: str = option("block", help="chord track: block | arpeggio")

    def __post_init__(self) -> None:
        check_int("chord_steps", self.chord_steps, 1)
        _check_choice("chord_style", self.chord_style, ("block", "arpeggio"))
        check_int("n", self.n, 1)
        check_int("length", self.length, 1)
        check_int("seed", self.seed, 0)
        check_range("temperature", self.temperature, 0.0, math.inf, low_open=True)
        check_range("qpm", self.qpm, 0.0, math.inf, low_open=True)
        check_int("program", self.program, 0, 127)


@dataclass
class DataBuildConfig:
    """Turn a folder of MIDI / ABC / MusicXML files into a dataset file."""

    input_dir: str = option("", help="folder to scan (recursively)")
    out: str = option("dataset.npz", help="dataset file to write")
    workers: int = option(1, help="parallel worker processes")
    key: str = option(
        "C major", help="transpose major melodies to this key's major, minor ones to its minor"
    )

    def __post_init__(self) -> None:
        check_int("workers", self.workers, 1)
        _check_key(self.key)


@dataclass
class NoteRNNTrainCLIConfig:
    """Train a Note RNN on a dataset (default: the bundled folk corpus)."""

    data: str | None = option(
        None, help="dataset file from `rltuner data build`; unset: the bundled corpus"
    )
    out: str = option(
        "note_rnn", help="output folder (best.safetensors, last.safetensors, log.jsonl)"
    )
    layer_sizes: str = option("100", help="LSTM layer sizes, comma separated (e.g. 512,512)")

    def __post_init__(self) -> None:
        self.sizes  # noqa: B018 -- parses and checks

    @property
    def sizes(self) -> tuple[int, ...]:
        """The LSTM layer sizes, bottom first."""
        try:
            sizes = tuple(int(x) for x in str(self.layer_sizes).split(","))
        except ValueError:
            sizes = ()
        if not sizes or min(sizes) < 1:
            raise RltunerError(
                "--layer-sizes must be positive whole numbers separated by commas (e.g. 512,512),"
                f" got {self.layer_sizes!r}"
            )
        return sizes


@dataclass
class NoteRNNImportConfig:
    """Convert a Magenta basic_rnn bundle or an RL Tuner Note RNN checkpoint (no TensorFlow)."""

    path: str = option(
        "", help=".mag bundle, TF checkpoint (prefix, .index, V1 file) or checkpoint folder"
    )
    out: str = option("note_rnn.safetensors", help="Note RNN checkpoint to write")
    scope: str | None = option(
        None,
        help="tensor-name prefix of the model when the checkpoint holds several; unset: "
        "the only one",
    )
    forget_bias: float = option(
        1.0, help="the LSTM cells' run-time forget bias (TensorFlow's default 1.0)"
    )


@dataclass
class EvaluateConfig:
    """Table-1 statistics (and more) of sampled compositions, for one or more models."""

    compositions: int = option(100_000, help="compositions sampled per model")
    seed: int = option(0, help="random seed (the same random numbers for every model)")
    out: str | None = option(
        None, help="folder for evaluation.md/.json/.csv and comparison.png; unset: print only"
    )
    key: str = option("C major", help="key of the music-theory statistics")
    num_notes: int = option(32, help="steps (16th notes) per composition")
    batch: int = option(1024, help="compositions advancing together in one chunk")
    workers: int = option(0, help="sampling threads (0 = number of CPUs, at most 4)")
    plot: bool = option(
        True, help="with --out, also write comparison.png (Table 1) and distributions.png"
    )
    note_rnn: str | None = option(None, help=_NOTE_RNN_HELP)
    chords: str | None = option(
        None, help=_CHORDS_HELP + "; adds the harmony statistics (chord tones, clashes, cadence)"
    )
    chord_steps: int = option(8, help=CHORD_STEPS_HELP)

    def __post_init__(self) -> None:
        check_int("chord_steps", self.chord_steps, 1)
        check_int("compositions", self.compositions, 1)
        check_int("seed", self.seed, 0)
        check_int("num_notes", self.num_notes, 1)
        check_int("batch", self.batch, 1)
        check_int("workers", self.workers, 0)
        _check_key(self.key)


@dataclass
class RenderConfig:
    """Render MIDI files to WAV audio."""

    out: str | None = option(None, help="output folder; unset: next to each MIDI file")
    synth: str = option("auto", help="auto (FluidSynth if installed) | fluidsynth | builtin")
    soundfont: str | None = option(
        None, help="General MIDI .sf2 for FluidSynth; unset: the system's FluidR3_GM"
    )
    sample_rate: int = option(
        0, help="samples per second (0 = 44100 with FluidSynth, 22050 built-in)"
    )

    def __post_init__(self) -> None:
        _check_choice("synth", self.synth, _SYNTHS)
        check_int("sample_rate", self.sample_rate, 0, 384_000)


@dataclass
class ReportConfig:
    """Write a self-contained offline HTML report of a tuning run."""

    out: str | None = option(None, help="HTML file to write; unset: RUN_DIR/report.html")
    samples: int = option(4, help="sample melodies (players + piano rolls) per model")
    compositions: int = option(2000, help="compositions per model for the Table-1 comparison")
    seed: int = option(0, help="random seed for the comparison and the samples")
    synth: str = option("auto", help="auto (FluidSynth if installed) | fluidsynth | builtin")
    note_rnn: str | None = option(None, help=_NOTE_RNN_HELP)
    chords: str | None = option(
        None, help="chord progression every model plays over (unset: a chord-tuned run's own)"
    )
    chord_steps: int = option(8, help=CHORD_STEPS_HELP)
    chord_style: str = option("block", help="chords in the players: block | arpeggio")

    def __post_init__(self) -> None:
        check_int("chord_steps", self.chord_steps, 1)
        _check_choice("chord_style", self.chord_style, ("block", "arpeggio"))
        check_int("samples", self.samples, 1)
        check_int("compositions", self.compositions, 1)
        check_int("seed", self.seed, 0)
        _check_choice("synth", self.synth, _SYNTHS)


def _ensure_out_dir(path: str | os.PathLike, what: str = "output folder") -> Path:
    """Create the folder ``path`` (and its parents) or fail with one sentence naming it."""
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RltunerError(f"{p}: cannot create the {what} ({e.strerror or e})") from None
    if not os.access(p, os.W_OK):
        raise RltunerError(f"{p}: the {what} is not writable")
    return p


# ---------------------------------------------------------------------- dataclass -> argparse
def _base_type(tp: Any) -> Any:
    if isinstance(tp, str):
        return tp
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return tp


def add_dataclass_args(
    parser: argparse.ArgumentParser,
    cls: type,
    skip: tuple[str, ...] = (),
    positional: tuple[str, ...] = (),
    aliases: dict[str, str] | None = None,
) -> None:
    """One ``--kebab-name`` option per field (``bool`` fields become ``--x/--no-x``)."""
    hints = typing.get_type_hints(cls)
    aliases = aliases or {}
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        tp = _base_type(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else None
        h = field_help(f).replace("%", "%%")
        if default is not None and f.name not in positional and not isinstance(default, bool):
            h = f"{h} (default: {default})"  # a None default: the help says what unset means
        if f.name in positional:  # optional here: a config file may give it
            parser.add_argument(f.name, type=tp, help=h, nargs="?", default=argparse.SUPPRESS)
            continue
        flags = [f"--{f.name.replace('_', '-')}"] + ([aliases[f.name]] if f.name in aliases else [])
        if tp is bool:
            parser.add_argument(
                *flags,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=f"{h} (default: {'on' if default else 'off'})",
            )
        elif tp in (int, float, str):
            parser.add_argument(
                *flags,
                dest=f.name,
                type=tp,
                default=argparse.SUPPRESS,
                metavar=f.name.upper(),
                help=h,
            )


def _config_from_args(cls: type, args: argparse.Namespace, base: dict[str, Any] | None = None):
    values = dict(base or {})
    for f in dataclasses.fields(cls):
        if hasattr(args, f.name):
            values[f.name] = getattr(args, f.name)
    return cls(**values)


def _read_toml(path: str) -> dict[str, Any]:
    import tomllib

    p = Path(path)
    if not p.exists():
        raise RltunerError(f"{p}: no such config file")
    try:
        return tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise RltunerError(f"{p}: not a valid TOML config ({e})") from None


def _load_config_file(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    if path.endswith(".json"):
        p = Path(path)
        if not p.exists():
            raise RltunerError(f"{p}: no such config file")
        try:
            return json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise RltunerError(f"{p}: not valid JSON ({e})") from None
    return _read_toml(path)


def _print_config(*cfgs: Any, extra: dict[str, Any] | None = None) -> None:
    import tomli_w

    d = {k: v for c in cfgs for k, v in dataclasses.asdict(c).items() if v is not None}
    d.update(extra or {})
    sys.stdout.write(tomli_w.dumps(d))


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML (or JSON) config; flags override it")
    parser.add_argument(
        "--print-config", action="store_true", help="print the effective config and exit"
    )


def _configs(args: argparse.Namespace, *classes: type, extra: tuple[str, ...] = ()) -> list[Any]:
    """One config per dataclass from ``--config FILE`` (keys split by field name) overridden by
    the flags. Keys of ``extra`` are allowed in the file and handled by the caller."""
    base = _load_config_file(getattr(args, "config", None))
    names = [{f.name for f in dataclasses.fields(c)} for c in classes]
    unknown = set(base) - set().union(*names) - set(extra)
    if unknown:
        raise RltunerError(f"{args.config}: unknown option(s) {sorted(unknown)}")
    out = []
    for cls, nm in zip(classes, names, strict=True):
        try:
            out.append(_config_from_args(cls, args, {k: v for k, v in base.items() if k in nm}))
        except TypeError as e:
            raise RltunerError(f"{args.config or 'config'}: {e}") from None
    return out


def _parse_pairs(items: list[str] | None, flag: str, example: str) -> dict[str, float]:
    """``NAME=NUMBER`` items of a repeatable option (``--weight``, ``--bound``) as a dict."""
    out: dict[str, float] = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise RltunerError(f"{flag} {item!r}: expected NAME=NUMBER, e.g. {example}")
    return out


# ---------------------------------------------------------------------- commands
def _refuse_changes_on_resume(args: argparse.Namespace, run: Path) -> None:
    """``--resume`` continues a run as it was configured: refuse every option that would change
    it (a silently ignored option is worse than an error)."""
    from rltuner.tuner import RESUME_OVERRIDES, TunerConfig

    given = [
        f"--{f.name.replace('_', '-')}"
        for f in dataclasses.fields(TunerConfig)
        # --note-rnn supplies the run's own prior (checked against its hash): no change
        if hasattr(args, f.name) and f.name not in RESUME_OVERRIDES and f.name != "note_rnn"
    ]
    if args.out is not None and Path(args.out).resolve() != run.resolve():
        given.append("--out")
    other = {"--config": args.config, "--force": args.force,
             "--print-config": args.print_config, "--weight": hasattr(args, "weight"),
             "--bound": hasattr(args, "bound")}  # fmt: skip
    given += [flag for flag, on in other.items() if on]
    if given:
        allowed = ", ".join("--" + k.replace("_", "-") for k in RESUME_OVERRIDES)
        raise RltunerError(
            f"--resume {run} continues the run as configured; {', '.join(given)} would change "
            f"it (with --resume only {allowed}, --note-rnn (the run's own prior, checked "
            "against its hash) and the run's --rule may be given; "
            "start a new run with --out for other settings)"
        )


def cmd_tune(args: argparse.Namespace) -> int:
    from rltuner.tuner import RESUME_OVERRIDES, RLTuner, TunerConfig

    if args.resume:
        run = Path(args.resume)
        _refuse_changes_on_resume(args, run)
        overrides: dict[str, Any] = {
            k: getattr(args, k) for k in RESUME_OVERRIDES if hasattr(args, k)
        }
        if getattr(args, "rules", None):
            overrides["rules"] = args.rules
        tuner = RLTuner.load(run, overrides, note_rnn=getattr(args, "note_rnn", None))
        print(f"resuming {run} at step {tuner.step:,} of {tuner.config.steps:,}")
    else:
        base = _load_config_file(args.config)
        cli_weights = _parse_pairs(getattr(args, "weight", None), "--weight", "autocorrelation=0")
        base["weights"] = {**base.get("weights", {}), **cli_weights}
        cli_bounds = _parse_pairs(getattr(args, "bound", None), "--bound", "unique_max=0.6")
        base["bounds"] = {**base.get("bounds", {}), **cli_bounds}
        rules = list(base.get("rules", []))
        rules += [r for r in getattr(args, "rules", None) or () if r not in rules]
        base["rules"] = rules
        if hasattr(args, "rules"):
            del args.rules  # merged into base above
        if hasattr(args, "chords"):  # --chords adds to the config file's progressions
            given = base.get("chords", [])
            base["chords"] = ([given] if isinstance(given, str) else list(given)) + args.chords
            del args.chords
        unknown = set(base) - {f.name for f in dataclasses.fields(TunerConfig)}
        if unknown:
            raise RltunerError(f"{args.config}: unknown option(s) {sorted(unknown)}")
        cfg = _config_from_args(TunerConfig, args, base)
        if args.print_config:
            _print_config(cfg)
            return 0
        if not args.out:
            raise RltunerError("tune needs --out RUN_DIR (or --resume RUN_DIR)")
        run = Path(args.out)
        tuner = RLTuner(cfg)  # train() refuses a folder that holds a run unless --force
        print(f"tuning {tuner.note_rnn_path} with {cfg.algorithm} for {cfg.steps:,} steps -> {run}")
    result = tuner.train(run, progress=not args.quiet, force=args.force)
    if result.get("interrupted"):
        return 130
    stats = result.get("stats")
    if stats:
        print(
            f"\nTable-1 statistics of {stats['compositions']:,} sampled compositions "
            f"(mean log p(a|s) {stats['mean_log_p']:.3f}):"
        )
        for k, v in stats["table1"].items():
            print(f"  {k:<38} {v:8.4f}")
        print(f"\nrun written to {run}/ (tuned.safetensors, stats.json, plots/, samples/)")
        if getattr(args, "wav", False):
            _render_files(sorted((run / "samples").glob("*.mid")), None, "auto")
    return 0


def _resolve_model(model: str | None) -> str | None:
    if model is None:
        return None
    p = Path(model)
    if p.is_dir():
        for name in ("tuned.safetensors", "best.safetensors", "last.safetensors"):
            if (p / name).exists():
                return str(p / name)
        raise RltunerError(f"{p}: folder holds no model (tuned/best/last .safetensors)")
    return model


def cmd_generate(args: argparse.Namespace) -> int:
    from rltuner.generate import generate

    (cfg,) = _configs(args, GenerateConfig)
    if args.print_config:
        _print_config(cfg)
        return 0
    _ensure_out_dir(cfg.out)
    ensure_compiled(0, announce=not args.quiet, groups=("acting",))
    res = generate(
        _resolve_model(cfg.model),
        cfg.out,
        n=cfg.n,
        length=cfg.length,
        seed=cfg.seed,
        primer_path=cfg.primer,
        temperature=cfg.temperature,
        most_probable=cfg.most_probable,
        qpm=cfg.qpm,
        program=cfg.program,
        note_rnn=cfg.note_rnn,
        chords=_split_progressions(cfg.chords),
        chord_steps=cfg.chord_steps,
        chord_style=cfg.chord_style,
    )
    print(f"wrote {len(res.midi_paths)} MIDI files to {Path(cfg.out)}/ and {res.piano_roll_path}")
    if cfg.wav:
        _render_files(res.midi_paths, None, "auto")
    return 0


def _split_progressions(text: str | None) -> list[str]:
    """``--chords "C G Am F; Am F C G"`` -> one text per progression."""
    return [p.strip() for p in (text or "").split(";") if p.strip()]


def _render_files(
    midi_paths: list[Path], out: str | None, synth: str, soundfont: str | None = None,
    sample_rate: int = 0,
) -> list[Path]:  # fmt: skip
    from rltuner.audio import render_wav

    written, used = [], set()
    for m in midi_paths:
        target = (Path(out) if out else m.parent) / (m.stem + ".wav")
        path, synth_used = render_wav(m, target, synth=synth, soundfont=soundfont,
                                      sample_rate=sample_rate or None)  # fmt: skip
        written.append(path)
        used.add(synth_used)
    if written:
        where = Path(out) if out else written[0].parent
        print(f"wrote {len(written)} WAV files to {where}/ ({', '.join(sorted(used))} synth)")
    return written


def cmd_evaluate(args: argparse.Namespace) -> int:
    from rltuner.evaluate import evaluate_models

    (cfg,) = _configs(args, EvaluateConfig, extra=("models",))
    models = args.models or list(_load_config_file(args.config).get("models", []))
    if args.print_config:
        _print_config(cfg, extra={"models": models} if models else None)
        return 0
    if not models:
        raise RltunerError("evaluate needs at least one MODEL (or models = [...] in --config)")
    ensure_compiled(0, announce=not args.quiet, groups=("acting",))
    if cfg.out:
        _ensure_out_dir(cfg.out)
    comp = evaluate_models(models, compositions=cfg.compositions, seed=cfg.seed,
                           key=Key.parse(cfg.key),
                           num_notes=cfg.num_notes, batch=cfg.batch,
                           workers=cfg.workers or None, progress=not args.quiet,
                           note_rnn=cfg.note_rnn, chords=_split_progressions(cfg.chords),
                           chord_steps=cfg.chord_steps)  # fmt: skip
    print(comp.to_markdown())
    if cfg.out:
        paths = comp.write(cfg.out)
        if cfg.plot:
            from rltuner.report import plot_comparison, plot_distributions

            paths["plot"] = plot_comparison(comp, Path(cfg.out) / "comparison.png")
            paths["distributions"] = plot_distributions(comp, Path(cfg.out) / "distributions.png")
        print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    cfg = _config_from_args(RenderConfig, args)
    src = Path(args.input)
    if src.is_dir():
        files = sorted(p for p in src.rglob("*") if p.suffix.lower() in (".mid", ".midi"))
        if not files:
            raise RltunerError(f"{src}: no .mid files in this folder")
    elif src.exists():
        files = [src]
    else:
        raise RltunerError(f"{src}: no such MIDI file or folder")
    if cfg.out:
        _ensure_out_dir(cfg.out)
    _render_files(files, cfg.out, cfg.synth, cfg.soundfont, cfg.sample_rate)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from rltuner.report import write_report

    if (Path(args.run_dir) / "trials.json").is_file():  # a sweep folder (rltuner sweep)
        from rltuner.sweep import collect_results
        from rltuner.sweep_results import write_sweep_report

        results = collect_results(args.run_dir)
        print(f"wrote {write_sweep_report(args.run_dir, results, getattr(args, 'out', None))}")
        return 0
    cfg = _config_from_args(ReportConfig, args)
    ensure_compiled(0, announce=not args.quiet, groups=("acting",))
    chords = None
    if cfg.chords:
        from rltuner.harmony import parse_progression

        chords = parse_progression(cfg.chords, cfg.chord_steps, where="--chords")
    path = write_report(args.run_dir, compare=args.compare or (), out=cfg.out,
                        n_samples=cfg.samples, compositions=cfg.compositions, seed=cfg.seed,
                        synth=cfg.synth, note_rnn=cfg.note_rnn, chords=chords,
                        chord_style=cfg.chord_style)  # fmt: skip
    print(f"wrote {path}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from rltuner.sweep import SweepConfig, run_sweep

    stored = {}
    if args.resume:
        stored = _load_config_file(str(Path(args.resume) / "sweep.json")) if (
            Path(args.resume) / "sweep.json").is_file() else {}  # fmt: skip
    elif not args.spec or not args.out:
        raise RltunerError("sweep needs SPEC.toml and --out SWEEP_DIR (or --resume SWEEP_DIR)")
    cfg = _config_from_args(SweepConfig, args, stored)
    run_sweep(args.resume or args.out, args.spec, cfg, resume=bool(args.resume), quiet=args.quiet)
    return 0


def cmd_data_build(args: argparse.Namespace) -> int:
    from rltuner.corpus import build_dataset

    (cfg,) = _configs(args, DataBuildConfig)
    if args.print_config:
        _print_config(cfg)
        return 0
    if not cfg.input_dir:
        raise RltunerError('data build needs INPUT_DIR (or input_dir = "..." in --config)')
    key = Key.parse(cfg.key)
    src = Path(cfg.input_dir)
    if not src.is_dir():
        raise RltunerError(f"{src}: no such folder")
    dataset, summary = build_dataset(
        src, progress=not args.quiet, workers=cfg.workers, target_key=key
    )
    print(summary.format())
    if len(dataset) == 0:
        raise RltunerError(f"{src}: no melody could be extracted; nothing written")
    dataset.save(cfg.out)
    print(f"wrote {len(dataset):,} melodies ({dataset.num_steps:,} steps) to {cfg.out}")
    return 0


def cmd_note_rnn_train(args: argparse.Namespace) -> int:
    from rltuner.corpus import Dataset, load_bundled
    from rltuner.note_rnn import NoteRNNConfig, TrainConfig, train_note_rnn

    cli, train_cfg = _configs(args, NoteRNNTrainCLIConfig, TrainConfig)
    if args.print_config:
        _print_config(cli, train_cfg)
        return 0
    _ensure_out_dir(cli.out)
    data = Dataset.load(cli.data) if cli.data else load_bundled()
    train, valid = data.split(train_cfg.validation_fraction, seed=train_cfg.seed)
    print(f"training on {len(train):,} melodies, validating on {len(valid):,}")
    res = train_note_rnn(
        train.melodies,
        valid.melodies,
        train_cfg,
        cli.out,
        model_config=NoteRNNConfig(cli.sizes),
        progress=not args.quiet,
    )
    print(
        f"best validation log-perplexity {res.best_valid_log_perplexity:.4f}; "
        f"model: {res.best_path}"
    )
    return 0


def cmd_note_rnn_import(args: argparse.Namespace) -> int:
    from rltuner.magenta_import import import_note_rnn

    (cfg,) = _configs(args, NoteRNNImportConfig)
    if args.print_config:
        _print_config(cfg)
        return 0
    if not cfg.path:
        raise RltunerError("note-rnn import: give the model to import (PATH)")
    res = import_note_rnn(cfg.path, cfg.out, scope=cfg.scope, forget_bias=cfg.forget_bias)
    what = res.source.get("configuration") or res.source["format"]
    print(f"imported {cfg.path} ({what}, LSTM {list(res.layer_sizes)}) -> {res.out}")
    return 0


# ---------------------------------------------------------------------- parser
def _is_note_rnn_train(argv: list[str]) -> bool:
    """``note-rnn train``: the only command whose options need torch (``note-rnn --help`` and
    ``note-rnn import`` need none, so the training options are not loaded for them)."""
    if "note-rnn" not in argv:
        return False
    i = argv.index("note-rnn")
    return argv[i + 1 : i + 2] == ["train"]


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The full parser. The ``note-rnn train`` options need torch (its config lives beside the
    model), so they are added only when ``argv`` asks for that command: the tuner's CPU path
    never pays torch's ~220 MB."""
    from rltuner import __version__

    p = argparse.ArgumentParser(
        prog="rltuner",
        description="Fine-tune a melody LSTM (Note RNN) with RL and music-theory rewards.",
    )
    p.add_argument("--version", action="version", version=f"rltuner {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
    )
    common.add_argument("--quiet", action="store_true", help="no progress bar")

    from rltuner.tuner import TunerConfig

    t = sub.add_parser(
        "tune",
        parents=[common],
        help="tune a Note RNN with RL",
        description="Tune a Note RNN with RL (defaults: the paper's).",
    )
    t.add_argument("--out", help="run directory (logs, checkpoints, plots, samples)")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    t.add_argument("--config", metavar="FILE", help="TOML (or JSON) config; flags override it")
    t.add_argument(
        "--print-config", action="store_true", help="print the effective config and exit"
    )
    t.add_argument(
        "--force", action="store_true", help="start over in a run directory that has a run"
    )
    t.add_argument(
        "--wav", action="store_true", help="also write a WAV next to each sample MIDI at the end"
    )
    t.add_argument(
        "--rule", action="append", dest="rules", default=argparse.SUPPRESS, metavar="FILE.py:FUNC",
        help="add a user reward rule (path/to/file.py:function, or an installed rule's name); "
        "repeatable; see rltuner.plugins",
    )  # fmt: skip
    t.add_argument(
        "--weight", action="append", default=argparse.SUPPRESS, metavar="NAME=W",
        help="weight of a rule (built-in or user; 0 turns it off); repeatable",
    )  # fmt: skip
    t.add_argument(
        "--chords", action="append", dest="chords", default=argparse.SUPPRESS, metavar="PROG",
        help=field_help(next(f for f in dataclasses.fields(TunerConfig) if f.name == "chords"))
        + "; repeatable",
    )  # fmt: skip
    t.add_argument(
        "--bound", action="append", default=argparse.SUPPRESS, metavar="NAME=B",
        help="kl_pg: bound on a statistic (starting_with_tonic=0.4, autocorrelation_3=0.02 "
        "for |lag-3| <= 0.02, ...; see --constraints); repeatable",
    )  # fmt: skip
    add_dataclass_args(t, TunerConfig, skip=("weights", "bounds", "rules", "chords"))
    t.set_defaults(func=cmd_tune)

    g = sub.add_parser("generate", parents=[common], help="sample melodies to MIDI + piano roll")
    _add_config_options(g)
    add_dataclass_args(g, GenerateConfig, aliases={"n": "-n"})
    g.set_defaults(func=cmd_generate)

    ev = sub.add_parser(
        "evaluate",
        parents=[common],
        help="Table-1 statistics of sampled compositions, comparing models",
        description="Sample compositions from each MODEL and print the paper's Table 1 (with "
        "standard errors, the paper's columns, and extra statistics). MODEL: a Note RNN or "
        "tuned checkpoint, a run directory, 'bundled', or NAME=PATH to label it.",
    )
    ev.add_argument("models", nargs="*", metavar="MODEL", help="models to evaluate")
    _add_config_options(ev)
    add_dataclass_args(ev, EvaluateConfig)
    ev.set_defaults(func=cmd_evaluate)

    rd = sub.add_parser("render", parents=[common], help="render MIDI files to WAV")
    rd.add_argument("input", metavar="INPUT", help="a .mid file or a folder of them")
    add_dataclass_args(rd, RenderConfig)
    rd.set_defaults(func=cmd_render)

    rp = sub.add_parser(
        "report", parents=[common], help="self-contained HTML report of a tuning run"
    )
    rp.add_argument("run_dir", metavar="RUN_DIR", help="run directory of `rltuner tune`")
    rp.add_argument(
        "--compare", nargs="+", default=[], metavar="MODEL",
        help="more models to compare (checkpoints, run directories, bundled, NAME=PATH)",
    )  # fmt: skip
    add_dataclass_args(rp, ReportConfig)
    rp.set_defaults(func=cmd_report)

    from rltuner.sweep import SweepConfig

    sw = sub.add_parser(
        "sweep", parents=[common], help="many tuning runs from one sweep file, on Ray Tune",
        description="Run every trial of a sweep file (a base tuner config and a search space) on "
        "Ray Tune, evaluate each, and write OUT/results.csv|json|md and plots. Needs the sweep "
        'extra: pip install "rltuner[sweep]".',
    )  # fmt: skip
    sw.add_argument(
        "spec",
        nargs="?",
        metavar="SWEEP.toml",
        help="the sweep file: [base], [space], [evaluation]",
    )
    sw.add_argument("--out", metavar="SWEEP_DIR", help="folder of the sweep (trials/, results)")
    sw.add_argument("--resume", metavar="SWEEP_DIR", help="continue an interrupted sweep")
    add_dataclass_args(sw, SweepConfig)
    sw.set_defaults(func=cmd_sweep)

    d = sub.add_parser("data", help="datasets")
    dsub = d.add_subparsers(dest="data_command", required=True)
    db = dsub.add_parser(
        "build", parents=[common], help="build a dataset from a folder of MIDI/ABC/MusicXML"
    )
    _add_config_options(db)
    add_dataclass_args(db, DataBuildConfig, positional=("input_dir",))
    db.set_defaults(func=cmd_data_build)

    n = sub.add_parser("note-rnn", help="Note RNN training and import")
    nsub = n.add_subparsers(dest="note_rnn_command", required=True)
    nt = nsub.add_parser("train", parents=[common], help="train a Note RNN (paper recipe)")
    _add_config_options(nt)
    add_dataclass_args(nt, NoteRNNTrainCLIConfig)
    if argv is None or _is_note_rnn_train(argv):
        from rltuner.note_rnn import TrainConfig

        add_dataclass_args(nt, TrainConfig, skip=("device",))
    nt.set_defaults(func=cmd_note_rnn_train)
    ni = nsub.add_parser(
        "import", parents=[common], help="import a Magenta basic_rnn / RL Tuner Note RNN model"
    )
    _add_config_options(ni)
    add_dataclass_args(ni, NoteRNNImportConfig, positional=("path",))
    ni.set_defaults(func=cmd_note_rnn_import)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        args = build_parser(argv).parse_args(argv)
        return int(args.func(args) or 0)
    except RltunerError as e:
        if debug:
            raise
        print(f"rltuner: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a file or folder the user named cannot be read or written
        if debug:
            raise
        where = f"{e.filename}: " if e.filename else ""
        print(f"rltuner: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
