"""Comparing organisations (比 of 查核比评) by participation rates scaled by head-count."""
