"""Who may call what: the local-only firewall now; dashboard sessions and API keys later."""
