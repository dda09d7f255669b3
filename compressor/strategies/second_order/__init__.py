"""Second-order pruning (obd, woodfisher, fishleg) and the curvature code it runs on.

- `fisher`: the Fisher of a classifier's prunable weights (sampled gradients, exact Gauss-Newton products);
- `inverse`: inverse-Fisher approximations of one layer behind one small interface (diagonal, block Woodbury);
- `fishleg`: FishLeg's learned Kronecker inverse Fisher;
- `obs`: Optimal Brain Surgeon on top of any of them (saliencies, selections, updates, N:M groups);
- `strategies`: the three registered strategies, which share one procedure and differ only in F⁻¹.

Importing this package registers the strategies.
"""

from compressor.strategies.second_order.strategies import FishLeg, OptimalBrainDamage, SecondOrderBase, WoodFisher

__all__ = ["FishLeg", "OptimalBrainDamage", "SecondOrderBase", "WoodFisher"]
