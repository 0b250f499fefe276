"""Airflow plugins shipped with the provider (see :mod:`airflow_provider_snowstorm.plugins.snowstorm`)."""
