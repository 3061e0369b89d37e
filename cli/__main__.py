"""`python -m cli`: the harbormaster command (bin/harbormaster wraps this)."""
from cli import commands, images, nodes, resources, scaling, streams  # noqa: F401 - importing adds them
from cli import usage  # noqa: F401 - `harbormaster usage`
from cli.app import run_cli

run_cli()
