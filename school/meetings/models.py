"""Offline lessons and meetings and who attended them."""
