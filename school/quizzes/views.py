"""Quiz pages."""

from flask import Blueprint

bp = Blueprint("quizzes", __name__)
