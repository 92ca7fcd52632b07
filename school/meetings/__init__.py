"""Offline party lessons and meetings (三会一课) and group viewing (集体收看), credited through the ledger."""
