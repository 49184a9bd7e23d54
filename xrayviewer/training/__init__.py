"""Training: everything `xrayviewer train` (and the wizard) needs, on top of the inference engine."""
