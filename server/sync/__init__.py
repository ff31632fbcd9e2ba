"""Keeping each worker's copies (accounts, keys, settings, sessions) current: the change watcher of the
host's workers and of other replicas (`reloader`, `replicas`), and asking the database before a key this
worker does not know yet is refused (`freshness`)."""
