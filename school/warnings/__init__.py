"""防瘫预警: scheduled rules raise warnings on organisations; levels escalate while a condition lasts."""
