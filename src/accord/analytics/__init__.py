"""Measurements over event logs, whatever mode produced them."""

from accord.analytics.metrics import quantile, summarize

__all__ = ["quantile", "summarize"]
