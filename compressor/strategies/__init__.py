"""Built-in strategies; importing this package registers them."""

from compressor.strategies import blocks, channels, magnitude, semistructured, sensitivity  # noqa: F401
