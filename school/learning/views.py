"""Members' study pages: 学习档案 (study record)."""

from flask import Blueprint

bp = Blueprint("learning", __name__)
