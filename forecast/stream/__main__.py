"""``python -m forecast.stream ...``: see :mod:`forecast.stream.cli`."""

import sys

from forecast.stream.cli import main

sys.exit(main())
