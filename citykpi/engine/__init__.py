"""citykpi.engine."""
