"""`python -m pipeline` runs the pricelens CLI."""

from pipeline.cli import main

main()
