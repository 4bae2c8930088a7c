"""``python -m trioweb``: the ``trioweb`` command."""

import sys

from ._cli import main

sys.exit(main())
