"""Contract negotiation (DSP 2025-1): offers become agreements under machine-checked policies."""
