"""Account selection, stickiness, cooldowns and the shared-state slots every worker reads."""
