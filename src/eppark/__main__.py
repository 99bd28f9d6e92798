"""``python -m eppark`` is ``eppark``."""

import sys

from eppark.cli.main import main

sys.exit(main())
