"""Usage: token counts, prices, the request log and its background batch writer.

Owns the `request_log` table: the proxy hands finished requests to the writer, readers query here.
"""
