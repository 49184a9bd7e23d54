"""Command-line entry points: the viewer, ``predict``, ``models`` and ``train``."""
