"""``python -m tallystick.cli``: the same as the ``tallystick`` command."""

import sys

from tallystick._entry import main

sys.exit(main())
