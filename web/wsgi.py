"""gunicorn's entry (``gunicorn web.wsgi:app``): the application built from this process's
configuration."""
import config
from web import create_app

app = create_app(config.from_env())
