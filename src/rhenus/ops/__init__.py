"""Operations: health and readiness probes, metrics, the audit log API, backup and restore."""
