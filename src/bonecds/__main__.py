"""`python -m bonecds` runs the command line."""

from bonecds.cli import main

main()
