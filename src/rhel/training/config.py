"""Typed training configuration: dataclasses, TOML/JSON load and save, shipped experiment configs.

A config file is TOML (parsed with :mod:`tomllib`) with numbers as numbers::

    name = "paper/eigenworms-linear"
    seeds = [2345, 3456, 4567, 5678, 6789]

    [data]
    name = "EigenWorms"

    [model]
    unit = "linear"
    num_blocks = 2
    ...

    [optim]
    lr = 1e-4
    ...

    [gradient]
    methods = ["rhel", "bptt"]

Unknown keys and wrongly typed values are errors (a typo never silently falls back to a default). One config
describes an *experiment*: every seed × gradient method is one run; :func:`expand` yields the single-run configs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from rhel.gradients.methods import GRADIENT_METHODS, METHOD_NAMES

#: The shipped config ``rhel train`` runs when no ``--config`` is given.
DEFAULT_CONFIG = "default"
UNITS = ("linear", "nonlinear")
SCHEDULES = ("constant", "cosine", "warmup_cosine")


class ConfigError(ValueError):
    """A config value is missing, unknown, of the wrong type or impossible."""


@dataclass(frozen=True)
class DataConfig:
    """Which dataset to train on; ``options`` are passed to ``rhel.data.load`` (e.g. ``length``, ``n_train``)."""

    name: str = "long_range_pattern"
    data_dir: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelConfig:
    """The HSSM's architecture (the paper's Section 4: encoder, HSSM blocks, head).

    ``complex_state`` applies to linear HRUs, ``step`` (the leapfrog time step; ``None``: the unit's default) to
    nonlinear ones; ``train_step`` to both. ``output_step`` (regression) is the number of input steps per output;
    ``None`` takes the dataset's ``target_stride``.
    """

    unit: str = "linear"
    num_blocks: int = 2
    hidden: int = 64
    state_size: int = 16
    time_channel: bool = False
    dropout: float = 0.05
    output_step: int | None = None
    remat_ff: bool = True
    complex_state: bool = True
    train_step: bool = True
    step: float | None = None


@dataclass(frozen=True)
class OptimConfig:
    """Adam with a constant learning rate (the paper), or an optax schedule by name; evaluation and early stopping.

    ``patience`` counts evaluations without improvement of the validation metric before stopping (0: never stop
    early). ``schedule`` is one of ``constant``, ``cosine`` (``optax.cosine_decay_schedule`` over ``steps``) and
    ``warmup_cosine`` (``optax.warmup_cosine_decay_schedule`` with ``warmup_steps``).
    """

    lr: float = 1e-3
    batch_size: int = 32
    steps: int = 1000
    eval_every: int = 100
    patience: int = 10
    schedule: str = "constant"
    warmup_steps: int = 0
    eval_batch_size: int = 256


@dataclass(frozen=True)
class GradientConfig:
    """Gradient methods to run (one run each) and the RHEL settings.

    ``epsilon`` is the RHEL nudging strength (``None``: the core's default, see ``rhel.default_epsilon``).
    ``relative_epsilon`` (default ``True``) scales the nudge relative to the size of the incoming gradient, so that
    its largest entry is ``epsilon`` in state units (``rhel.RHEL(relative=True)``); ``False`` is the paper's and the
    official code's convention, nudge = ``epsilon`` × the loss gradient.

    ``loss_scale`` multiplies the loss before differentiation and divides the gradients after it. With a relative
    ε (the default) a loss scale leaves the RHEL nudge unchanged: it only moves the floating-point range in which
    gradients are computed. With ``relative_epsilon = false`` it multiplies the effective nudge by ``loss_scale``,
    which is what the official code's loss scale did silently.

    ``resync_every`` (default ``None``: never) re-synchronises RHEL's echo on the forward state every this many
    steps (``rhel.RHEL(resync_every=K)``): for chaotic energies or long sequences of a nonlinear unit, where the
    echo's return drifts by rounding and the dynamics amplify the echoes' difference out of its linear regime
    (docs/training.md). Symmetric estimators only (``rhel``, ``rhel-richardson``).
    """

    methods: tuple[str, ...] = ("rhel",)
    epsilon: float | None = None
    relative_epsilon: bool = True
    loss_scale: float = 1.0
    resync_every: int | None = None


@dataclass(frozen=True)
class TrainConfig:
    """An experiment: data × model × optimiser × gradient methods × seeds."""

    name: str = "custom"
    seeds: tuple[int, ...] = (0,)
    float64: bool = False
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    gradient: GradientConfig = field(default_factory=GradientConfig)

    def validate(self) -> TrainConfig:
        """Raise :class:`ConfigError` on impossible settings; return ``self``."""
        problems = []
        m, o, g = self.model, self.optim, self.gradient
        if m.unit not in UNITS:
            problems.append(f"model.unit must be one of {UNITS}, got {m.unit!r}")
        for name in ("num_blocks", "hidden", "state_size", "output_step"):
            if getattr(m, name) is not None and getattr(m, name) < 1:
                problems.append(f"model.{name} must be >= 1, got {getattr(m, name)}")
        if not 0.0 <= m.dropout < 1.0:
            problems.append(f"model.dropout must lie in [0, 1), got {m.dropout}")
        if m.step is not None and not m.step > 0:
            problems.append(f"model.step must be positive, got {m.step}")
        if not (math.isfinite(o.lr) and o.lr > 0):
            problems.append(f"optim.lr must be a positive number, got {o.lr}")
        for name in ("batch_size", "steps", "eval_every", "eval_batch_size"):
            if getattr(o, name) < 1:
                problems.append(f"optim.{name} must be >= 1, got {getattr(o, name)}")
        if o.patience < 0 or o.warmup_steps < 0:
            problems.append("optim.patience and optim.warmup_steps must be >= 0")
        if o.schedule not in SCHEDULES:
            problems.append(f"optim.schedule must be one of {SCHEDULES}, got {o.schedule!r}")
        if not g.methods:
            problems.append("gradient.methods is empty")
        for method in g.methods:
            if method not in METHOD_NAMES:
                problems.append(f"unknown gradient method {method!r}; expected one of {METHOD_NAMES}")
        if g.epsilon is not None and not (math.isfinite(g.epsilon) and g.epsilon > 0):
            problems.append(f"gradient.epsilon must be a positive number, got {g.epsilon}")
        if not (math.isfinite(g.loss_scale) and g.loss_scale > 0):
            problems.append(f"gradient.loss_scale must be a positive number, got {g.loss_scale}")
        if g.resync_every is not None:
            if g.resync_every < 1:
                problems.append(f"gradient.resync_every must be a positive number of steps, got {g.resync_every}")
            rhel = [GRADIENT_METHODS[m] for m in g.methods if m in GRADIENT_METHODS and GRADIENT_METHODS[m].estimator]
            one_sided = [m.name for m in rhel if not m.symmetric]  # BPTT methods ignore the setting
            if one_sided:
                problems.append(
                    f"gradient.resync_every needs a symmetric RHEL estimator; {', '.join(one_sided)} has none "
                    "(use rhel or rhel-richardson, or drop resync_every)"
                )
        if not self.seeds:
            problems.append("seeds is empty")
        if problems:
            raise ConfigError(f"invalid config {self.name!r}:\n  " + "\n  ".join(problems))
        return self


def expand(config: TrainConfig) -> list[TrainConfig]:
    """One single-run config (one seed, one gradient method) per seed × method, methods outermost."""
    return [
        dataclasses.replace(config, seeds=(seed,), gradient=dataclasses.replace(config.gradient, methods=(method,)))
        for method in config.gradient.methods
        for seed in config.seeds
    ]


# ---------------------------------------------------------------------------------------------- dict conversion


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(value, inner, where)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table, got {value!r}")
        return _from_dict(annotation, value, where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        (inner, _) = typing.get_args(annotation)
        return tuple(_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table, got {value!r}")
        return dict(value)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported config annotation {annotation!r}")  # pragma: no cover


def _from_dict(cls: type, data: dict[str, Any], where: str = "config") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown key(s) in {where}: {', '.join(unknown)}; expected some of {sorted(names)}")
    kwargs = {k: _coerce(v, hints[k], f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """A :class:`TrainConfig` from nested dicts (TOML/JSON shape); missing keys take the defaults."""
    return _from_dict(TrainConfig, data)


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    """Nested plain dicts/lists (tuples become lists), ready for JSON."""

    def plain(v):
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        return v

    return plain(dataclasses.asdict(config))


# ---------------------------------------------------------------------------------------------- files


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise ConfigError(f"cannot write {v!r} to TOML")


def _toml_lines(table: dict[str, Any], prefix: str) -> list[str]:
    lines = [f"{k} = {_toml_value(v)}" for k, v in table.items() if v is not None and not isinstance(v, dict)]
    for k, v in table.items():
        if isinstance(v, dict):
            name = f"{prefix}.{k}" if prefix else k
            lines += ["", f"[{name}]", *_toml_lines(v, name)]
    return lines


def dumps_toml(config: TrainConfig) -> str:
    """TOML text of a config (``None`` values are omitted: they are the defaults of their optional fields)."""
    return "\n".join(_toml_lines(config_to_dict(config), "")).lstrip("\n") + "\n"


def save_config(config: TrainConfig, path: str | Path) -> Path:
    """Write ``config`` as ``.toml`` or ``.json`` (chosen by the suffix)."""
    path = Path(path)
    if path.suffix == ".toml":
        text = dumps_toml(config)
    elif path.suffix == ".json":
        text = json.dumps(config_to_dict(config), indent=2) + "\n"
    else:
        raise ConfigError(f"config files are .toml or .json, got {path}")
    path.write_text(text)
    return path


def _shipped(name: str):
    return resources.files("rhel.configs").joinpath(*f"{name}.toml".split("/"))


def list_configs() -> list[str]:
    """Names of the configs shipped with the package (``default``, ``paper/eigenworms-linear``, ...)."""
    root = resources.files("rhel.configs")
    names = []

    def walk(node, prefix):
        for child in node.iterdir():
            if child.is_dir():
                walk(child, f"{prefix}{child.name}/")
            elif child.name.endswith(".toml"):
                names.append(prefix + child.name[: -len(".toml")])

    walk(root, "")
    return sorted(names)


def load_config(name_or_path: str | Path) -> TrainConfig:
    """Load a config file (``.toml`` or ``.json``) or a shipped config by name; validate it."""
    path = Path(name_or_path)
    if path.is_file():
        text, suffix = path.read_text(), path.suffix
    else:
        resource = _shipped(str(name_or_path))
        if not resource.is_file():
            raise ConfigError(
                f"no config file {str(name_or_path)!r} and no shipped config of that name; shipped: "
                + ", ".join(list_configs())
            )
        text, suffix = resource.read_text(), ".toml"
    try:
        data = json.loads(text) if suffix == ".json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"cannot parse config {name_or_path}: {error}") from error
    return config_from_dict(data).validate()


def configure(
    name_or_path: str | Path | None = None,
    *,
    dataset: str | None = None,
    data_dir: str | None = None,
    unit: str | None = None,
    methods: typing.Sequence[str] | None = None,
    epsilon: float | None = None,
    loss_scale: float | None = None,
    seeds: typing.Sequence[int] | None = None,
    float64: bool = False,
    **optim: int | float | None,
) -> TrainConfig:
    """A config with overrides applied, validated: what ``rhel train`` and ``rhel gradcheck`` run.

    **Arguments:**

    - `name_or_path`: a shipped config name or a ``.toml``/``.json`` file (``None``: the shipped ``default``).
    - `dataset`: another dataset (the base config's data options are dropped: they belong to its dataset).
    - `data_dir`, `unit`, `epsilon`, `loss_scale`: replace ``data.data_dir``, ``model.unit``, ``gradient.epsilon``,
      ``gradient.loss_scale``.
    - `methods`, `seeds`: replace the gradient methods and the seeds (duplicates dropped, order kept).
    - `float64`: train in double precision (``False`` keeps the config's setting).
    - `optim`: fields of :class:`OptimConfig` (``steps``, ``lr``, ``batch_size``, ...) to replace.

    ``None`` leaves a setting as the config has it.
    """
    config = load_config(DEFAULT_CONFIG if name_or_path is None else name_or_path)
    replace = dataclasses.replace
    data, model, gradient = config.data, config.model, config.gradient
    if dataset is not None and dataset != data.name:
        data = replace(data, name=dataset, options={})
    if data_dir is not None:
        data = replace(data, data_dir=data_dir)
    if unit is not None:
        model = replace(model, unit=unit)
    unknown = sorted(set(optim) - {f.name for f in dataclasses.fields(OptimConfig)})
    if unknown:
        raise TypeError(f"configure() got unknown optimiser setting(s) {unknown}")
    optim_config = replace(config.optim, **{k: v for k, v in optim.items() if v is not None})
    if methods is not None:
        gradient = replace(gradient, methods=tuple(dict.fromkeys(methods)))
    if epsilon is not None:
        gradient = replace(gradient, epsilon=epsilon)
    if loss_scale is not None:
        gradient = replace(gradient, loss_scale=loss_scale)
    config = replace(config, data=data, model=model, optim=optim_config, gradient=gradient)
    if seeds is not None:
        config = replace(config, seeds=tuple(dict.fromkeys(seeds)))
    if float64:
        config = replace(config, float64=True)
    return config.validate()


# ---------------------------------------------------------------------------------------------- any field, by name


def _field(path: str) -> tuple[Any, bool]:
    """The annotation of the config field a dotted ``path`` names (``Optional`` removed) and whether it may be
    ``None``; a :class:`ConfigError` naming the key when there is no such field.

    Keys below a ``dict`` field (``data.options.length``) are free: the dataset's loader checks them.
    """
    annotation: Any = TrainConfig
    optional = False
    parts = path.split(".")
    for i, part in enumerate(parts):
        if typing.get_origin(annotation) is dict:
            return Any, True
        names = [f.name for f in dataclasses.fields(annotation)] if dataclasses.is_dataclass(annotation) else []
        if part not in names:
            where = ".".join(parts[:i]) or "the config"
            raise ConfigError(f"--set {path}: {where} has no field {part!r}; expected one of {', '.join(names)}")
        annotation = typing.get_type_hints(annotation)[part]
        args = typing.get_args(annotation)
        optional = typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args
        if optional:
            (annotation,) = [a for a in args if a is not type(None)]
    if dataclasses.is_dataclass(annotation):
        raise ConfigError(f"--set {path}: {path} is a table; set one of its fields ({path}.<field>=VALUE)")
    return annotation, optional


def _parse_value(text: str) -> Any:
    """A command-line value as TOML reads it (``128``, ``3e-4``, ``true``, ``["rhel", "bptt"]``, ``"x"``); a bare
    word that is not TOML (``fsdd``, ``rhel-one-sided``) is a string and ``none`` is ``None``."""
    if text.strip().lower() in ("none", "null"):
        return None
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_settings(config: TrainConfig, assignments: typing.Sequence[str]) -> TrainConfig:
    """``config`` with ``KEY=VALUE`` assignments applied (``rhel train --set``), typed and validated as a file is.

    **Arguments:**

    - `config`: the config to start from.
    - `assignments`: ``"model.hidden=128"``, ``"optim.lr=3e-4"``, ``"gradient.methods=rhel,bptt"``,
      ``"data.options.length=1024"``, ``"seeds=[1, 2]"``. Values are TOML values; a bare word is a string, ``none``
      resets an optional field and a list field also takes a comma-separated list.

    An unknown key, a wrongly typed value or an impossible setting raises :class:`ConfigError` naming it.
    """
    data = config_to_dict(config)
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE, e.g. model.hidden=128")
        annotation, optional = _field(key)
        value = _parse_value(text.strip())
        if typing.get_origin(annotation) is tuple and isinstance(value, str):
            value = [_parse_value(v.strip()) for v in value.split(",") if v.strip()]
        if value is None and not optional:
            raise ConfigError(f"--set {key}: {key} cannot be none; give a value")
        table = data
        *parents, last = key.split(".")
        for part in parents:
            table = table.setdefault(part, {})
        table[last] = value
    try:
        return config_from_dict(data).validate()
    except ConfigError as error:
        raise ConfigError(f"--set: {error}") from None


@dataclass(frozen=True)
class ConfigSummary:
    """One line of ``rhel train --list-configs``: a shipped config's name, description, dataset, length and steps."""

    name: str
    description: str
    dataset: str
    length: int | None
    steps: int
    seeds: int


def _description(text: str, width: int = 90) -> str:
    """The first sentence of a config file's leading comment, shortened to ``width`` characters."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    words = " ".join(lines)
    sentence = words.split(". ")[0].rstrip(".")
    return sentence if len(sentence) <= width else sentence[: width - 1].rstrip() + "…"


def describe_configs() -> list[ConfigSummary]:
    """A :class:`ConfigSummary` per shipped config, in :func:`list_configs` order (the sequence length is the
    config's ``data.options.length`` or the registered dataset's; ``None`` when neither says)."""
    from rhel.data.registry import dataset_info

    summaries = []
    for name in list_configs():
        text = _shipped(name).read_text()
        config = config_from_dict(tomllib.loads(text))
        length = config.data.options.get("length")
        if length is None:
            try:
                length = dataset_info(config.data.name).length
            except KeyError:
                length = None
        summaries.append(
            ConfigSummary(name, _description(text), config.data.name, length, config.optim.steps, len(config.seeds))
        )
    return summaries
