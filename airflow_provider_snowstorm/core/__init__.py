"""The pure modelling core: features, decomposition, detector, thresholds, persistence, reports.

Nothing in this package imports Airflow, so it is fast to test and usable from a notebook.
"""
