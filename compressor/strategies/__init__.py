"""Built-in strategies; importing this package registers them."""

from compressor.strategies import channels, magnitude, semistructured, sensitivity  # noqa: F401
