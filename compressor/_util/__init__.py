"""Private plumbing shared by every stage: files, devices, environment, progress, plugins, preflight."""
