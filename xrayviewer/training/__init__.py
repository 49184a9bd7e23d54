"""Training: everything `xrayviewer train` needs (config, data, loop, metrics, reports)."""
