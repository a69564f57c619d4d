"""``python -m fusionbus`` runs the CLI."""

from fusionbus.cli import main

main()
