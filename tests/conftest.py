"""Strict test set-up: 8 fake CPU devices and JAX checks that turn silent mistakes into errors.

XLA reads the device count when the backend starts, so it is set before JAX is imported
anywhere in the test session.
"""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402  (must come after XLA_FLAGS)

jax.config.update("jax_numpy_rank_promotion", "raise")

