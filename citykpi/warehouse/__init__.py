"""citykpi.warehouse."""
