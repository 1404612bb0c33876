"""Training HSSMs: typed configs, the loop (checkpoints, resume, metrics log), results tables and the CLI."""

from rhel.training.config import ConfigError as ConfigError
from rhel.training.config import TrainConfig as TrainConfig
from rhel.training.config import expand as expand
from rhel.training.config import load_config as load_config
from rhel.training.config import save_config as save_config
from rhel.training.experiment import NonFiniteError as NonFiniteError
from rhel.training.loop import RunResult as RunResult
from rhel.training.loop import train_run as train_run

__all__ = [
    "ConfigError",
    "NonFiniteError",
    "RunResult",
    "TrainConfig",
    "expand",
    "load_config",
    "save_config",
    "train_run",
]
