"""The shared core: configuration plumbing, database, keys, blobs, audit, HTTP conventions.

Nothing in here imports a domain package; domains build on it.
"""
