"""``python -m koopjax`` = the ``koopjax`` command."""

import sys

from koopjax.cli import main

sys.exit(main())
