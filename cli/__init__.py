"""The `harbormaster` command: a client of the HTTP API, nothing else (it never opens the
database or Docker). Commands in cli.commands and cli.resources; HTTP in cli.client."""
