"""Placeholder: lands next."""
