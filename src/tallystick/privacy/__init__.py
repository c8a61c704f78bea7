"""Privacy and the data lifecycle on the server: declared data, the privacy listing, deletion, retention, quarantine.

See docs/privacy.md for what is collected and how each guarantee is enforced, and
``DESIGN.md`` beside this file for the stateful parts (tombstones, quarantine, reload).
"""

from __future__ import annotations

from tallystick.privacy.errors import DeclarationError, InvalidUserId, PrivacyError

__all__ = ["DeclarationError", "InvalidUserId", "PrivacyError"]
