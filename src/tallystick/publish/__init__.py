"""A static public report: what the telemetry showed, with minimum cell counts, for any static host.

from tallystick.publish import load_config, publish
written = publish(warehouse, load_config("publish.toml"), "site/")
written.files     # ['data/adoption.csv', ..., 'index.html']

Phases as modules: ``config`` (what to publish), ``sections`` (each analysis cut down to
cells of at least k users, by ``cells``), ``svg`` (the charts), ``site`` (the files).
"""

from __future__ import annotations

from tallystick.publish.cells import Cell, Cells, Policy, protect
from tallystick.publish.config import ChartConfig, PublishConfig
from tallystick.publish.config import load as load_config
from tallystick.publish.config import parse as parse_config
from tallystick.publish.errors import BadConfig, PublishError, Unpublishable
from tallystick.publish.site import Written, publish

__all__ = [
    "BadConfig",
    "Cell",
    "Cells",
    "ChartConfig",
    "Policy",
    "PublishConfig",
    "PublishError",
    "Unpublishable",
    "Written",
    "load_config",
    "parse_config",
    "protect",
    "publish",
]
