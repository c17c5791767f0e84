"""Values as error messages show them: short, and never thousands of digits."""

from __future__ import annotations

__all__ = ["shown"]


def shown(value: object, limit: int = 80) -> str:
    """A repr of *value* for a message: an int too long to print by its size, else cut."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an int of {value.bit_length()} bits"
    try:
        text = repr(value)
    except ValueError:  # holds an int too long to print
        return f"a {type(value).__name__} too long to show"
    return text if len(text) <= limit else text[: limit - 3] + "..."
