"""The data space: catalogue, usage policies, contract negotiation, transfers, data pools."""
