"""Recovery stage: what a compressed model gets back (fine-tuning, BatchNorm recalibration, head re-fit)."""
