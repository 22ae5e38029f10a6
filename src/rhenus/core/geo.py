"""Geographic facts the federation's rules use."""

# The 27 member states of the European Union (ISO 3166-1 alpha-2), as of 2026.
EU_MEMBER_STATES = frozenset({
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE",
    "IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
})  # fmt: skip
