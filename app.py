"""WSGI entry: `flask --app app …` and `gunicorn app:app`."""

from school import create_app

app = create_app()
