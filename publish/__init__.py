"""Publish: the stable tables dashboards read (signals, claims, runs) and the DuckDB warehouse views."""
