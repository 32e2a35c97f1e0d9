"""Entry point of ``python -m braindump_cli``."""

import sys

from braindump_cli.cli import main

sys.exit(main())
