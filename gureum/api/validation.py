"""JSON-schema validation for handlers: the same functions as ``gureum.validation``.

Validation is not HTTP: services check their input with ``gureum.validation``
directly (they never import ``gureum.api``); handlers may use either name.
"""

from __future__ import annotations

from gureum.validation import field_of, validate, validator_for

__all__ = ["field_of", "validate", "validator_for"]
