"""`python -m bonecds` runs the command line."""

from bonecds.cli.app import main

main()
