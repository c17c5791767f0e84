"""Reading JSON that came from outside: one reader, one typed error.

``json.loads`` raises more than ``ValueError`` on text nobody vetted: a few
thousand ``[`` raise ``RecursionError`` (the decoder recurses once a level),
what is neither text nor bytes ``TypeError``; bytes that are not UTF-8 and an
integer past Python's 4,300-digit limit raise ``ValueError``. A document that
decodes just under the interpreter's stack still breaks whatever walks it
next (``json.dumps`` to store it, a repr). Page cursors, webhook bodies,
purge requests and stored carts read here, so a crafted input always gets
:class:`~commercekit.errors.InvalidInputError`, never a builtin error that a
web framework turns into a 500.
"""

from __future__ import annotations

import json
from typing import Any

from commercekit.errors import InvalidInputError

__all__ = ["MAX_DEPTH", "read_json", "read_json_object"]

MAX_DEPTH = 64
"""How deep arrays and objects may nest: far past any document commercekit reads."""


def read_json(text: str | bytes | bytearray, *, what: str, max_depth: int = MAX_DEPTH) -> Any:
    """*text* decoded, or :class:`InvalidInputError` naming *what* it should have been.

    Refused: what is not JSON, text that is not UTF-8, nesting deeper than
    *max_depth*, an integer too long to convert. The error says where the
    text went wrong, never what it holds, and does not chain the decoder's
    error (``JSONDecodeError.doc`` is the whole document, which may be
    anything a caller sent).
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        reason = f"{exc.msg} at character {exc.pos}"
    except RecursionError:
        reason = "nested too deep"
    except UnicodeError:
        reason = "not UTF-8 text"
    except ValueError as exc:  # an integer past the conversion limit: the limit, no digits
        reason = str(exc).partition(":")[0]
    except TypeError:
        reason = f"{type(text).__name__}, not text"
    else:
        # Nesting past max_depth needs more than max_depth brackets: most documents
        # (cursors, small bodies) are told apart by a count far cheaper than the walk.
        if _openers(text) > max_depth and _deeper_than(data, max_depth):
            raise InvalidInputError(f"{what} nests more than {max_depth} levels deep")
        return data
    raise InvalidInputError(f"{what} is not JSON ({reason})")


def read_json_object(
    text: str | bytes | bytearray, *, what: str, max_depth: int = MAX_DEPTH
) -> dict[str, Any]:
    """:func:`read_json`, and :class:`InvalidInputError` unless it is a JSON object."""
    data = read_json(text, what=what, max_depth=max_depth)
    if not isinstance(data, dict):
        raise InvalidInputError(f"{what} is not a JSON object")
    return data


def _openers(text: str | bytes | bytearray) -> int:
    """How many ``[`` and ``{`` *text* holds (inside strings too: an upper bound of the nesting)."""
    if isinstance(text, str):
        return text.count("[") + text.count("{")
    return text.count(b"[") + text.count(b"{")


def _deeper_than(data: object, limit: int) -> bool:
    """Whether *data*'s arrays and objects nest past *limit* (walked without recursion)."""
    if not isinstance(data, list | dict):
        return False
    level: list[Any] = [data]
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[Any] = []
        for node in level:
            children = node.values() if isinstance(node, dict) else node
            below += [c for c in children if type(c) is list or type(c) is dict]
        level = below
    return False
