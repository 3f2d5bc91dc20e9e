"""One trainer for every koopjax model: state, `build` (config + mesh -> state + jitted step),
the loop, checkpoints."""

from koopjax.train.build import Built
from koopjax.train.build import build
from koopjax.train.loop import NonFiniteLossError
from koopjax.train.loop import RunResult
from koopjax.train.loop import restore
from koopjax.train.loop import run
from koopjax.train.state import TrainState
from koopjax.train.step import train_step

__all__ = ("Built", "NonFiniteLossError", "RunResult", "TrainState", "build", "restore", "run",
           "train_step")
