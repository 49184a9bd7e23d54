"""Qt (PySide6) user interface: widgets and background workers over the imaging and engine layers."""
