"""Helpers shared by the integration tests (real node, real HTTP)."""
