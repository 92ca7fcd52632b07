"""Organizer and admin pages for warnings and their rules."""

from flask import Blueprint

bp = Blueprint("warnings", __name__)
