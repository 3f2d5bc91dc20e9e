"""Neural-network layers (Flax Linen) for the Koopman autoencoders.

`DownConv` and `UpConv` are the stride-2 convolution and transposed convolution of the SKD
encoder and decoder (PyTorch ``Conv2d``/``ConvTranspose2d`` with kernel 4, stride 2,
padding 1, in NHWC), each with a ``"fast"`` implementation for XLA:CPU and a ``"plain"``
one; `down_conv` and `up_conv` are the same operations as functions of arrays.
`BatchNormLeakyReLU` (function: `batch_norm_leaky_relu`) is BatchNorm followed by a leaky
ReLU with a hand-written backward pass that touches the activations fewer times.
"""

from koopjax.nn.conv import DownConv
from koopjax.nn.conv import UpConv
from koopjax.nn.conv import down_conv
from koopjax.nn.conv import up_conv
from koopjax.nn.norm import BatchNormLeakyReLU
from koopjax.nn.norm import batch_norm_leaky_relu

__all__ = (
    "BatchNormLeakyReLU",
    "DownConv",
    "UpConv",
    "batch_norm_leaky_relu",
    "down_conv",
    "up_conv",
)
