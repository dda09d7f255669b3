"""Private plumbing shared by every stage: files, devices, environment, progress, preflight checks, and the one
registry (with entry-point plugins) behind strategies, architectures and datasets."""
