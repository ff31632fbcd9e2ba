"""Process life cycle: how the main process supervises its workers, and how a worker drains and stops.

`supervisor` runs in Sanic's main process (start, stop at any moment, replace dead workers);
`drain` runs in each worker (readiness, refusing new work, finishing streams before exit);
`reclaim` gives back what a dead worker held (in-flight counts, leases).
"""
