"""What this organisation shares: datasets and services with their offers, and the Dataspace
Protocol catalog other nodes request."""
