"""Messaging: a Matrix Client-Server API (v3) homeserver on the node's own database and accounts."""
