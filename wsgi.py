"""WSGI entry point (Procfile web): `gunicorn -c python:app.gunicorn_conf wsgi:app`."""

from app.factory import create_app

app = create_app()
