"""Account lifecycle: credentials in (auth.json import), encrypted storage, the in-memory roster,
token refresh and state changes. Only this package writes account rows."""
