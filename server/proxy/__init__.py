"""Client-facing proxy routes: Responses over HTTP (SSE and JSON) and compaction."""
