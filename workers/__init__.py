"""Workers: the only code that talks to Docker (docker_ops) and the Dramatiq side of jobs."""
