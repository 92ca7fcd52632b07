"""Warning rules, warnings and their history."""
