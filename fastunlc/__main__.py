"""``python -m fastunlc`` is the ``fastunlc`` command."""

import sys

from .cli import main

sys.exit(main())
