"""Privacy and the data lifecycle on the server: declared data, the privacy listing, deletion, retention, quarantine.

See docs/privacy.md for what is collected and how each guarantee is enforced, and the
design notes at the top of ``tombstones.py``, ``quarantine.py``, ``gate.py`` (reload),
``deletion.py`` and ``retention.py`` for the stateful parts.
"""

from __future__ import annotations

from tallystick.privacy.errors import DeclarationError, InvalidUserId, PrivacyError

__all__ = ["DeclarationError", "InvalidUserId", "PrivacyError"]
