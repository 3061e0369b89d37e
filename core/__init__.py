"""The pure core: frozen dataclasses and functions over them, importing only the standard
library. Planning, placement, autoscaling, health classification, backoff, the container
spec and instance naming live here; web and workers both use it, and nothing here does I/O.
"""
