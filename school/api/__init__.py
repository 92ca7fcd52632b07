"""JSON API under /api/v1: same services as the pages, OpenAPI document generated from the code."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api/v1")

from school.api import learning, routes, uploads  # noqa: E402,F401  (routes attach to bp)
