"""citykpi.catalogue."""
