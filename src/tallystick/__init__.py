"""Tallystick: self-hosted, privacy-first usage telemetry for command-line tools."""

__version__ = "0.1.0"
