"""Pickle from the network, decoded without running code from it (spec §9).

A one-liner peer pickles everything: request tuples, packet metadata, most payloads. A pickle can
call any importable callable while it loads, so data from a socket goes through `RestrictedUnpickler`,
which builds plain values only and refuses every other global by name. Full unpickling needs an
explicit `trusted=True` (the CLI's --trust-pickle).
"""

from __future__ import annotations

import builtins
import io
import pickle
from typing import Any

from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING

#: Plain types that reach a pickle as a global (protocol 4 reduces these to builtins.X(...));
#: None, bool, int, float, str, bytes, tuple, list, dict, set and frozenset need no global at all.
PLAIN_GLOBALS = frozenset({"complex", "bytearray", "set", "frozenset"})

#: Built-in exception classes: a stream whose function raised carries the exception itself (spec §5.4).
BUILTIN_EXCEPTIONS = frozenset(
    name for name, value in vars(builtins).items() if isinstance(value, type) and issubclass(value, BaseException)
)

#: What a payload may reference; packet metadata and requests need less (see `loads` callers).
PAYLOAD_GLOBALS = PLAIN_GLOBALS | BUILTIN_EXCEPTIONS
NO_GLOBALS: frozenset[str] = frozenset()



class UnsafePickle(pickle.UnpicklingError):
    """The pickle references a global outside the allowed set; nothing of it was called."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unsafe pickle refused: {name}")
        self.name = name


class RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, allowed: frozenset[str]) -> None:
        super().__init__(io.BytesIO(data))
        self.allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        # Protocol 0-2 pickles use Python 2 names (exceptions.ValueError); map them as pickle does.
        module, name = NAME_MAPPING.get((module, name), (module, name))
        module = IMPORT_MAPPING.get(module, module)
        if module == "builtins" and name in self.allowed:
            return getattr(builtins, name)
        if (module, name) == ("_codecs", "encode") and self.allowed:
            return _latin1  # how protocol 0-2 pickles carry bytes
        raise UnsafePickle(f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickle(f"persistent id {pid!r}")


def _latin1(text: str, encoding: str) -> bytes:
    """_codecs.encode, restricted to the one use pickle makes of it (no codec lookup by name)."""
    if encoding not in ("latin1", "latin-1"):
        raise UnsafePickle(f"_codecs.encode with {encoding!r}")
    return text.encode("latin-1")


def loads(data: bytes, allowed: frozenset[str] = PAYLOAD_GLOBALS, *, trusted: bool = False) -> Any:
    """The pickle at the start of `data`. Raises UnsafePickle for a refused global and
    pickle.UnpicklingError for anything else that does not load."""
    try:
        return pickle.loads(data) if trusted else RestrictedUnpickler(data, allowed).load()
    except UnsafePickle:
        raise
    except Exception as exc:  # a broken pickle fails in many ways (EOFError, ValueError, KeyError, ...)
        raise pickle.UnpicklingError(f"not a pickle: {exc}") from None
