"""The privacy package's errors: one base, one subclass per failure, messages that say what to do."""

from __future__ import annotations


class PrivacyError(Exception):
    """Base of the privacy package's errors."""


class DeclarationError(PrivacyError):
    """A declaration of an application's data that cannot be used; one line saying what to fix."""


class InvalidUserId(PrivacyError):
    """A user ID that is not one the client generates (a version-4 UUID)."""


class UnknownApplication(PrivacyError):
    """An application ID that is not valid, or not registered where the command looked."""
