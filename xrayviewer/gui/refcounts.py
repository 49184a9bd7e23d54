"""A guard against a reference-counting bug of PySide6 6.12 on CPython before 3.12.

PySide6 6.12.0 (its cp310-abi3 wheels) returns ``None`` from every C++ method that returns nothing
(``setText``, ``setValue``, ``setEnabled``, painting calls...) and ``True`` from ``Signal.emit`` *without*
adding a reference: each call takes one reference from the singleton. On CPython 3.12 and later these
singletons are immortal (PEP 683) and nothing happens; on 3.11 their count reaches zero and the process
aborts ("Fatal Python error: none_dealloc: deallocating None"): after about 5000 such calls in a bare
application, and in the viewer, which starts with about 187 000 references to ``None`` and spends about
280 per window/level drag step and 200 per film opened, after some 670 drag steps or 1300 films.

:func:`guard_singletons` makes ``None``, ``True`` and ``False`` as good as immortal on such interpreters: it
adds 2^60 references to each, once. They are never meant to be freed, so the extra references change
nothing else; the bug would need 2^60 calls (centuries) to use them up. On CPython 3.12+ it does nothing.
"""

from __future__ import annotations

import ctypes
import sys

IMMORTAL_REFERENCES = 2**60
_guarded = False


def needs_guard() -> bool:
    """True on interpreters where ``None``, ``True`` and ``False`` can be freed: CPython before 3.12."""
    return sys.implementation.name == "cpython" and sys.version_info < (3, 12)


def guard_singletons() -> bool:
    """Add :data:`IMMORTAL_REFERENCES` references to ``None``, ``True`` and ``False`` (once per process,
    under the GIL); True when it did (False: already done, or not needed on this interpreter)."""
    global _guarded
    if _guarded or not needs_guard():
        return False
    for singleton in (None, True, False):
        # CPython's object header starts with ob_refcnt (Py_ssize_t) at the object's address
        ctypes.c_ssize_t.from_address(id(singleton)).value += IMMORTAL_REFERENCES
    _guarded = True
    return True
