"""Figures measured from the real layers: ``python -m forecast.figures convs out=DIR``."""
