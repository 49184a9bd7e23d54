"""PyInstaller's entry script for the ``xrayviewer`` executable (build_installer.spec).

Kept outside the package so that the frozen ``__main__`` is this file and ``xrayviewer`` is imported as the
package it is. ``cli.main.main`` calls ``multiprocessing.freeze_support()`` first: the viewer's spawned
decoder processes start this same executable.
"""

import sys

from xrayviewer.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
