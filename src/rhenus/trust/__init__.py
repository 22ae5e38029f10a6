"""Trust between organisations: did:web identities, signed node-to-node requests, credentials."""
