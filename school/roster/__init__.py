"""Bulk member import for organizers: parse a spreadsheet, plan row by row, apply all-or-nothing."""
