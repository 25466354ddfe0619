"""`python -m gexbot.report`: see `gexbot.report.cli`."""

import sys

from gexbot.report.cli import main

sys.exit(main())
