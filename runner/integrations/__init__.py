"""Integrations with the tools postrun runs under; each module imports its tool, so import the
one you use: ``runner.integrations.dagster`` (the ``dagster`` extra) and
``runner.integrations.pytest_plugin`` (a pytest plugin, registered as ``postrun``)."""
