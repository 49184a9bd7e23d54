"""Allow ``python -m xrayviewer``."""

import sys

from xrayviewer.cli.main import main

sys.exit(main())
