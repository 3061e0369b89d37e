"""Launching the platform: bootstrap of Docker, Postgres, Redis and test images; supervision."""
