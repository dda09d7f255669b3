"""Curvature for second-order pruning: Fisher estimates, inverse-Fisher approximations and OBS on top of them."""
