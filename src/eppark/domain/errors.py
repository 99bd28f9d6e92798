"""The one error the domain raises for bad input."""

from __future__ import annotations


class BadInput(ValueError):
    """Input that cannot be acted on; ``field`` is its dotted path (``pass.valid_until``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message
