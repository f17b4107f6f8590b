"""Remote-control modes: how much a participant may do, from watching to typing raw keys.

PRODUCT.md "Modes": ``view_only`` lets no input of any kind reach the terminal;
``approved_execution`` forwards a submitted line only after policy (and maybe an approver)
allows it; ``privileged`` forwards raw keystrokes. Modes are ordered: a participant may always
drop to a lower one, and needs policy (and maybe approval) to move up.
"""

from __future__ import annotations

from enum import StrEnum


class Mode(StrEnum):
    """A participant's mode; the value is the name used in policy files, links and the wire."""

    VIEW_ONLY = "view_only"
    APPROVED_EXECUTION = "approved_execution"
    PRIVILEGED = "privileged"

    @property
    def rank(self) -> int:
        """Position in the order view_only < approved_execution < privileged."""
        return _RANK[self]


_RANK = {Mode.VIEW_ONLY: 0, Mode.APPROVED_EXECUTION: 1, Mode.PRIVILEGED: 2}
