"""`python -m orchestrator` runs the imagebatch command line."""

import sys

from .cli import main

sys.exit(main())
