"""Postgres access: a psycopg 3 pool, plain SQL, one module per aggregate.

Knows nothing of Flask, Dramatiq or Docker. ``Unavailable`` is the one error the
callers translate into "503, Postgres".
"""
