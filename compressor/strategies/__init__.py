"""Built-in strategies; importing this package registers them."""

from compressor.strategies import magnitude  # noqa: F401
