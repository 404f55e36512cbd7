"""`python -m aisre` runs the CLI."""

from aisre.cli.main import main

main()
