"""Organizer pages: record an offline lesson or meeting, group viewing."""

from flask import Blueprint

bp = Blueprint("meetings", __name__)
