"""citykpi.render."""
