"""`python -m cli`: the harbormaster command (bin/harbormaster wraps this)."""
from cli.commands import run_cli

run_cli()
