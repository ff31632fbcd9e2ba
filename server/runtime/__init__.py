"""What every process stands on besides HTTP: start-up checks and migrations (`startup`, `migrator`),
leases, the roster version marker every store bumps, the secret box, and logging (`logs`, escaped by
`control_characters`)."""
