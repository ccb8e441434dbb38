"""`python -m runner` is `postrun`."""

from runner.cli import main

main()
