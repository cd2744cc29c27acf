"""List cleaning: which addresses of a list are worth mailing, and why the others are not.

    import bounced

    for row in bounced.clean(["ann@example.com", "bob@gmial.com"], suppressions=sup):
        print(row.address, row.status, row.reason, row.detail)

`clean` (bounced.clean.pipeline) streams verdicts for rows of any size;
bounced.clean.reading opens files as spreadsheets write them and
bounced.clean.writing writes the results. The checks themselves are pure
(bounced.clean.checks); DNS is bounced.clean.dns.

`bounced.clean` names both this package and the function: once any module of the
package is imported, Python sets the package as the attribute `bounced.clean`, so
the package itself is made callable (it calls `clean`) and `bounced.clean(rows)`
means the same whichever was imported first.
"""

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from bounced.clean.kinds import CleanReason, Mode, Status

if TYPE_CHECKING:
    from bounced.clean.pipeline import Cleaned, CleanOptions, Record, Unreadable, clean

__all__ = [
    "CleanOptions",
    "CleanReason",
    "Cleaned",
    "Mode",
    "Record",
    "Status",
    "Unreadable",
    "clean",
]


#: Served on first use: the pipeline pulls in email-validator, dnspython and the
#: public suffix list, which `bounced --help` and `bounced parse` should not pay for.
_LAZY = frozenset({"Cleaned", "CleanOptions", "Record", "Unreadable", "clean"})


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module("bounced.clean.pipeline"), name)


class _Callable(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from bounced.clean.pipeline import clean

        return clean(*args, **kwargs)


sys.modules[__name__].__class__ = _Callable
