"""Conformance mode: what the Eclipse DSP TCK expects of a connector under test — its fixtures,
its per-case behaviour, and its trigger endpoints for the consumer role (docs/conformance.md)."""
