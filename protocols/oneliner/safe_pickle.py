"""Pickle from the network, decoded without running code from it and within limits (spec §9).

A one-liner peer pickles everything: request tuples, packet metadata, most payloads. A pickle can
call any importable callable while it loads, so data from a socket goes through `loads`, which
builds plain values only and refuses every other global by name. Full unpickling needs an
explicit `trusted=True` (the CLI's --trust-pickle).

A pickle of a few bytes can also cost gigabytes without any global: a declared length or memo index
far beyond the data, a tuple nested a million deep (hashing it overflows the C stack), a structure
sharing itself exponentially (a memo bomb: small in memory, endless once walked), a cycle, an int
whose decimal text is megabytes. `scan` walks the opcodes before anything is built and `check`
walks the result, so each of these is refused as `OverLimit` in time linear in the data.
"""

from __future__ import annotations

import builtins
import codecs
import io
import pickle
import pickletools
import warnings
from _compat_pickle import IMPORT_MAPPING, NAME_MAPPING
from collections.abc import Callable, Collection
from itertools import chain
from typing import Any, cast

from fieldctl.protocols.core.limits import MAX_DEPTH, Malformed

#: Built-in exception classes: a stream whose function raised carries the exception itself (spec §5.4).
BUILTIN_EXCEPTIONS = frozenset(
    name for name, value in vars(builtins).items() if isinstance(value, type) and issubclass(value, BaseException)
)

#: Ints beyond about 4,200 decimal digits: Python refuses to print them (sys.get_int_max_str_digits).
MAX_INT_BITS = 14_000
#: Distinct ints or floats sharing one hash value: more only serve to make dict and set inserts quadratic.
MAX_HASH_SHARERS = 32


class UnsafePickle(pickle.UnpicklingError):
    """The pickle references a global outside the allowed set; nothing of it was called."""

    def __init__(self, name: str) -> None:
        super().__init__(f"unsafe pickle refused: {name}")
        self.name = name


class OverLimit(pickle.UnpicklingError, Malformed):
    """A pickle whose decoding would cost more than its size warrants (memory, time, depth)."""


def clip(text: str, limit: int = 120) -> str:
    """Peer text made safe for one line of an error: control characters escaped, length bounded."""
    shown = "".join(char if char.isprintable() else repr(char)[1:-1] for char in text[:limit])
    return shown + ("…" if len(text) > limit else "")


def short_repr(value: Any, limit: int = 120) -> str:
    """repr() of a value `check` accepted (it is then finite, shallow and printable), clipped; a
    trusted object whose repr fails is named by its type."""
    try:
        return clip(repr(value), limit)
    except Exception:  # noqa: BLE001  a trusted object's own __repr__ may raise anything
        return f"<{clip(type(value).__name__, 40)} object>"


# --- what the restricted unpickler may build -------------------------------------------------------


class _Sealed:
    """A callable a pickle may reference in place of a builtin. A pickle can also BUILD on what it
    references (set attributes, a function's __defaults__ or __dict__): this has none to set, so a
    packet cannot change how the next one decodes."""

    __slots__ = ("_call", "real")
    _call: Callable[..., Any]
    #: What the pickle named (builtins.bytearray, _codecs.encode): what a peer gets back.
    real: Any

    def __init__(self, call: Callable[..., Any], real: Any) -> None:
        object.__setattr__(self, "_call", call)
        object.__setattr__(self, "real", real)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{name} cannot be set")

    def __call__(self, *args: Any) -> Any:
        return self._call(*args)


def _bytearray(source: Any = b"", *encoding: str) -> bytearray:
    """builtins.bytearray as pickles use it (from bytes, or from latin-1 text), never bytearray(n)."""
    if isinstance(source, int):
        raise OverLimit("bytearray(n) refused: it allocates n bytes the pickle does not carry")
    if encoding and encoding[0] not in ("latin1", "latin-1", "utf-8", "ascii"):
        raise UnsafePickle(f"bytearray with encoding {clip(str(encoding[0]), 40)}")
    return bytearray(source, *encoding)


def _latin1(text: str, encoding: str) -> bytes:
    """_codecs.encode, restricted to the one use pickle makes of it (no codec lookup by name)."""
    if encoding not in ("latin1", "latin-1"):
        raise UnsafePickle(f"_codecs.encode with {clip(str(encoding), 40)}")
    return text.encode("latin-1")


_LATIN1 = _Sealed(_latin1, codecs.encode)


#: Plain types that reach a pickle as a global (protocol 2-4 reduce these to builtins.X(...));
#: None, bool, int, float, str, bytes, tuple, list, dict, set and frozenset need no global at all.
_PLAIN = {"complex": complex, "bytearray": _Sealed(_bytearray, bytearray), "set": set, "frozenset": frozenset}
PLAIN_GLOBALS = frozenset(_PLAIN)


def unsealed(value: Any, depth: int = 0) -> Any:
    """`value` with every sealed callable in it back as what its pickle named, for a simulated
    server that hands decoded arguments back (echo, get): it pickles them as the real server does,
    not as a fieldctl class no peer may unpickle. Containers deeper than the decoder allows stay."""
    if isinstance(value, _Sealed):
        return value.real
    if depth > MAX_DEPTH or not isinstance(value, (list, tuple, dict, set, frozenset)):
        return value
    if isinstance(value, dict):
        return {unsealed(key, depth + 1): unsealed(item, depth + 1) for key, item in value.items()}
    return type(value)(unsealed(item, depth + 1) for item in value)


#: What a payload may reference; packet metadata and requests need less (see `loads` callers).
PAYLOAD_GLOBALS = PLAIN_GLOBALS | BUILTIN_EXCEPTIONS
NO_GLOBALS: frozenset[str] = frozenset()


class RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, allowed: frozenset[str]) -> None:
        super().__init__(io.BytesIO(data))
        self.allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        # Protocol 0-2 pickles use Python 2 names (exceptions.ValueError); map them as pickle does.
        module, name = NAME_MAPPING.get((module, name), (module, name))
        module = IMPORT_MAPPING.get(module, module)
        if module == "builtins" and name in self.allowed:
            return _PLAIN.get(name) or getattr(builtins, name)
        if (module, name) == ("_codecs", "encode") and self.allowed:
            return _LATIN1  # how protocol 0-2 pickles carry bytes
        raise UnsafePickle(clip(f"{module}.{name}"))

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickle("a persistent id")


# --- before unpickling: the opcodes ----------------------------------------------------------------


def _shape(op: pickletools.OpcodeInfo) -> tuple[str, int, bool, bool]:
    """(what the opcode does to the stack; the operands it pops, or for a marked slice those below
    the MARK (the container APPENDS adds to); whether it pops to a MARK; whether it pushes)."""
    name, before = op.name, op.stack_before
    if name in ("INT", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT"):
        kind = "number"  # of any size or hash (BININT* are 32-bit: distinct hashes, but for -1 and -2)
    elif not before and op.stack_after and name not in ("MARK", "GET", "BINGET", "LONG_BINGET"):
        kind = "leaf"
    elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE", "GET", "BINGET", "LONG_BINGET", "DUP", "MARK", "POP"):
        kind = name.rpartition("_")[2].removeprefix("BIN")  # PUT, MEMOIZE, GET, DUP, MARK, POP
    elif name in ("APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"):
        kind = "modify"  # adds to the container below its operands
    else:
        kind = "build"
    marked = pickletools.markobject in before
    below = before.index(pickletools.markobject) if marked else len(before)
    return kind, below, marked, bool(op.stack_after)


_SHAPES = {op: _shape(op) for op in pickletools.opcodes}


def scan(data: bytes, max_depth: int = MAX_DEPTH) -> None:
    """Walks the opcodes as the unpickler would, building nothing: every declared length is within
    the data (pickletools checks), memo indexes stay below the opcode count (the C unpickler sizes
    its memo by the largest index), nesting stays within max_depth, no int is too long to print,
    and few numbers share a hash. Depths are tracked per stack slot and memo entry; aliasing can
    make a mutable container deeper than tracked, which `check` catches, but hashing only recurses
    through tuples, which are built once and tracked exactly. Raises OverLimit, or
    UnpicklingError for bytes that are no pickle."""
    stack: list[int] = []  # the nesting depth of what each stack slot holds
    marks: list[int] = [0]  # marks[-1] is the fence: what lies below it is out of reach
    memo: dict[int, int] = {}
    hashes: dict[int, Any] = {}
    sharers: dict[int, set[Any]] = {}
    try:
        for count, (op, arg, _) in enumerate(pickletools.genops(data), 1):
            kind, below, marked, pushes = _SHAPES[op]
            if kind == "leaf":
                stack.append(0)
            elif kind == "number":
                if type(arg) is int and arg.bit_length() > MAX_INT_BITS:
                    raise OverLimit(f"an int of {arg.bit_length()} bits (over about 4,200 decimal digits)")
                first = hashes.setdefault(hash(arg), arg)
                if first != arg:
                    _share(first, arg, sharers)
                stack.append(0)
            elif kind == "MARK":
                marks.append(len(stack))
            elif kind in ("PUT", "MEMOIZE"):
                index = len(memo) if kind == "MEMOIZE" else cast("int", arg)  # PUT's operand: a memo index
                if index > count:
                    raise OverLimit(f"memo index {index} at opcode {count}: beyond anything a pickler writes")
                if len(stack) <= marks[-1]:
                    raise _broken("memo store from an empty stack")
                memo[index] = stack[-1]
            elif kind == "GET":
                if arg not in memo:
                    raise _broken(f"memo index {arg} was never stored")
                stack.append(memo[arg])
            elif kind == "DUP":
                if len(stack) <= marks[-1]:
                    raise _broken("DUP on an empty stack")
                stack.append(stack[-1])
            elif kind == "POP" and len(marks) > 1 and marks[-1] == len(stack):
                marks.pop()  # as the C unpickler does: POP right after MARK drops the mark
            else:
                if marked:
                    if len(marks) == 1:
                        raise _broken(f"{op.name} without a MARK")
                    start = marks.pop() - below
                else:
                    start = len(stack) - below
                if start < marks[-1]:
                    raise _broken(f"{op.name}: stack underflow")
                operands = stack[start:]
                del stack[start:]
                if kind == "modify":
                    stack.append(max(operands[0], max(operands[1:], default=0) + 1))
                elif pushes:
                    stack.append(max(operands, default=-1) + 1)
                if stack and stack[-1] > max_depth:
                    raise OverLimit(f"nested deeper than {max_depth} levels")
    except OverLimit:
        raise
    except (ValueError, OverflowError) as exc:  # genops: truncated data, bad opcode or argument
        raise _broken(str(exc)) from None


def _broken(why: str) -> pickle.UnpicklingError:
    """Bytes the unpickler would refuse too (they cost nothing to refuse)."""
    return pickle.UnpicklingError(f"not a pickle: {clip(why)}")


def _share(first: Any, value: Any, sharers: dict[int, set[Any]]) -> None:
    group = sharers.setdefault(hash(first), {first})
    group.add(value)
    if len(group) > MAX_HASH_SHARERS:
        raise OverLimit(f"over {MAX_HASH_SHARERS} distinct numbers share one hash value (a hash flood)")


# --- after unpickling: the value -------------------------------------------------------------------


def cost_limit(size: int) -> int:
    """What decoding `size` bytes of pickle may cost in `check` units: a few times its size, so
    shared references (a pickle's memo) may repeat values, but not explode them."""
    return 4 * size + 1024


def check(value: Any, budget: int, max_depth: int = MAX_DEPTH) -> None:
    """Raises OverLimit unless `value`, walked as JSON or repr() would walk it (shared parts once per
    reference), is acyclic, within max_depth, and costs at most `budget`: one unit per element plus
    one per 16 characters or bytes. Ints must be printable. Walking stops at the first limit crossed,
    so a memo bomb costs `budget` steps, not its expansion."""
    left = budget - 1
    on_path: set[int] = set()
    # (value, depth) to visit, or (id, -1): leaving a container, its id leaves the path. Elements
    # are paid for when queued, so the queue itself never outgrows the budget.
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if depth < 0:
            on_path.discard(item)
            continue
        kind = type(item)
        if kind in _TEXTS:
            left -= len(item) // 16
        elif kind is int:
            _check_ints((item,))
        children = _children(item)
        if children is not None:
            if depth >= max_depth:
                raise OverLimit(f"nested deeper than {max_depth} levels")
            if id(item) in on_path:
                raise OverLimit("a structure that contains itself")
            left -= len(children)
        if left < 0:
            raise OverLimit(f"expands beyond {budget} units once walked (shared references: a memo bomb?)")
        if not children:
            continue
        kinds = set(map(type, children))
        if kinds <= _NUMBERS:  # the big case (samples, arrays as lists): checked at C speed
            _check_ints(children if kinds <= {int, bool} else [child for child in children if type(child) is int])
            continue
        on_path.add(id(item))
        pending.append((id(item), -1))
        pending.extend((child, depth + 1) for child in children)


_TEXTS = frozenset({str, bytes, bytearray})
_NUMBERS = frozenset({int, bool, float, complex, type(None)})


def _check_ints(ints: Collection[int]) -> None:
    bits = max(map(int.bit_length, ints), default=0)
    if bits > MAX_INT_BITS:
        raise OverLimit(f"an int of {bits} bits (over about 4,200 decimal digits)")


def _children(item: Any) -> Collection[Any] | None:
    if isinstance(item, (list, tuple, set, frozenset)):
        return item
    if isinstance(item, dict):
        return list(chain.from_iterable(item.items()))
    if isinstance(item, BaseException):
        return BaseException.__reduce__(item)[1:]  # args and any attributes, without creating a __dict__
    return None


def loads(
    data: bytes, allowed: frozenset[str] = PAYLOAD_GLOBALS, *, trusted: bool = False, max_depth: int = MAX_DEPTH
) -> Any:
    """The pickle at the start of `data`. Raises UnsafePickle for a refused global, OverLimit for a
    pickle over the limits, and pickle.UnpicklingError for anything else that does not load.
    Trusted data may build any class (the standard unpickler), but its opcodes are scanned all the
    same, and the caller bounds what it does with the value (codec.jsonable checks it)."""
    with warnings.catch_warnings():  # a peer's bad escapes in a protocol-0 string: not our warning to print
        warnings.simplefilter("ignore")
        scan(data, max_depth)
        try:
            value = pickle.loads(data) if trusted else RestrictedUnpickler(data, allowed).load()
        except (UnsafePickle, OverLimit):
            raise
        except Exception as exc:  # noqa: BLE001  a broken pickle fails in many ways (EOFError, KeyError, ...)
            raise _broken(str(exc)) from None
    check(value, cost_limit(len(data)), max_depth)
    return value
