"""``python -m memabrad``."""

import sys

from memabrad.cli.main import main

sys.exit(main())
