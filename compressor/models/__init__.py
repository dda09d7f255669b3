"""Model stage: the architecture zoo, weights-only checkpoints, cached baselines and the training loop."""
