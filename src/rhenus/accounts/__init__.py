"""Accounts of the organisation's agents: users, roles, login tokens, API keys."""
