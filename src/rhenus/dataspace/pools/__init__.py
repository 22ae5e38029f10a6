"""Compute-to-data (data pools): a consumer's aggregate query runs at the provider, under an
agreement that permits the action ``compute``, over a dataset that never leaves the provider;
only aggregates of groups of at least *k* rows come back, optionally with differential privacy.
See ``docs/pools.md`` for the policy terms, the API and the threat model."""
