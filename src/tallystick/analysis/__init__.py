"""Built-in analyses: the questions a maintainer asks of their telemetry."""
