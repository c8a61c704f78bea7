"""``python -m tallystick.cli``: the same as the ``tallystick`` command."""

import sys

from tallystick.cli import main

sys.exit(main())
