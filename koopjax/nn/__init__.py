"""Neural-network layers (Flax Linen) for the Koopman autoencoders.

`DownConv` and `UpConv` are the stride-2 convolution and transposed convolution of the SKD
encoder and decoder (PyTorch ``Conv2d``/``ConvTranspose2d`` with kernel 4, stride 2,
padding 1, in NHWC), each with a ``"fast"`` implementation for XLA:CPU and a ``"plain"``
one; `down_conv` and `up_conv` are the same operations as functions of arrays.
`BatchNormLeakyReLU` (function: `batch_norm_leaky_relu`) is BatchNorm followed by a leaky
ReLU with a hand-written backward pass that touches the activations fewer times.
`koopjax.nn.recurrent` holds the recurrent cells (`make_cell` by name: the Lipschitz RNN and
its baselines) that `flax.linen.RNN` scans.
"""

from koopjax.nn.conv import DownConv
from koopjax.nn.conv import UpConv
from koopjax.nn.conv import down_conv
from koopjax.nn.conv import up_conv
from koopjax.nn.norm import BatchNormLeakyReLU
from koopjax.nn.norm import batch_norm_leaky_relu
from koopjax.nn.recurrent import CELLS
from koopjax.nn.recurrent import AntisymmetricRNNCell
from koopjax.nn.recurrent import LipschitzRNNCell
from koopjax.nn.recurrent import ResidualRNNCell
from koopjax.nn.recurrent import SimpleRNNCell
from koopjax.nn.recurrent import make_cell

__all__ = (
    "AntisymmetricRNNCell",
    "BatchNormLeakyReLU",
    "CELLS",
    "LipschitzRNNCell",
    "ResidualRNNCell",
    "SimpleRNNCell",
    "DownConv",
    "UpConv",
    "batch_norm_leaky_relu",
    "down_conv",
    "make_cell",
    "up_conv",
)
