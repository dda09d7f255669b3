"""Built-in strategies; importing this package registers them."""

from compressor.strategies import blocks, channels, magnitude, quantize, semistructured, sensitivity  # noqa: F401
