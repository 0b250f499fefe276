"""Snowstorm: find anomalies in Snowflake spend with machine learning, and alert on them."""

__version__ = "0.1.0"
