"""An ordered registry: name → entry, the shape every vocabulary in ``citykpi.vocab`` shares."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Generic, Protocol, TypeVar


class Entry(Protocol):
    """What every registry entry has: a ``name`` (the YAML spelling) and a one-line ``summary``."""

    @property
    def name(self) -> str: ...

    @property
    def summary(self) -> str: ...


E = TypeVar("E", bound=Entry)


class Registry(Mapping[str, E], Generic[E]):
    """An ordered, append-only mapping of names to entries (registration order is kept).

    ``register`` refuses a second entry under a name already taken, so two modules cannot silently
    fight over one spelling; ``unregister`` exists for tests that register a toy entry.
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._entries: dict[str, E] = {}

    def register(self, entry: E) -> E:
        """Add ``entry`` under its name and return it (so a module can keep a reference)."""
        if entry.name in self._entries:
            raise ValueError(f"{self.what} '{entry.name}' is already registered")
        self._entries[entry.name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Remove an entry (for tests that register a toy entry at run time)."""
        del self._entries[name]

    def names(self) -> tuple[str, ...]:
        """The registered names, in registration order."""
        return tuple(self._entries)

    def __getitem__(self, name: str) -> E:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, {list(self._entries)!r})"
