"""Audit log: an append-only record of organizer and admin actions (who, when, what, from where)."""
