"""Test support: real servers (PostgreSQL) started for the test session."""
