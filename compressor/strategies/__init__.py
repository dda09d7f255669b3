"""Built-in strategies; importing this package registers them."""

from compressor.strategies import (  # noqa: F401
    blocks,
    channels,
    magnitude,
    quantize,
    second_order,
    semistructured,
    sensitivity,
)
