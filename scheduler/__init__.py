"""The scheduler process: periodic triggers only, fired by the single leader."""
