"""Built-in strategies; importing this package registers them."""

from compressor.strategies import magnitude, semistructured  # noqa: F401
