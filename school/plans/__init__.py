"""学习计划: courses and lessons pushed to an organisation subtree with a start and a deadline."""
