"""Periodic evaluation of warning rules."""
