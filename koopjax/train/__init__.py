"""One trainer for every koopjax model: state, jitted sharded step, loop, checkpoints."""

from koopjax.train.loop import NonFiniteLossError
from koopjax.train.loop import RunResult
from koopjax.train.loop import restore
from koopjax.train.loop import run
from koopjax.train.state import TrainState
from koopjax.train.step import train_step

__all__ = ("NonFiniteLossError", "RunResult", "TrainState", "restore", "run", "train_step")
