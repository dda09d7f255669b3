"""Supervised Contrastive pre-training and linear evaluation (built on `compressor`); not implemented yet."""
