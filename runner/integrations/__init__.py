"""Integrations with orchestrators; each module imports its tool, so import the one you use:
``runner.integrations.dagster`` (the ``dagster`` extra). The pytest plugin is
``runner.pytest_plugin``."""
