"""Reference images between items: what each item waits for, and the checks of that graph. Pure.

An entry of `items[].references` is one of three things, told apart in this order:

- the id of another item of the job: the item waits until that one is completed and is sent
  its image (a dependency);
- an `http://` or `https://` URL: fetched once when the job is created (`reference_urls`);
- otherwise a file path (relative to the spec file).

With `"consistency": "first-as-reference"` every item also depends on the anchor (the item
named by `anchor`, else the first item), which is generated first. A dependency on an unknown
id cannot be told from a missing file, so `specfile` and `preflight` name both in their error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

__all__ = [
    "FIRST_AS_REFERENCE",
    "dependencies",
    "dependents_of",
    "graph_problem",
    "is_url",
    "outside_refs",
]

FIRST_AS_REFERENCE = "first-as-reference"


class _Item(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def references(self) -> tuple[str, ...]: ...


class _Recorded(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def depends_on(self) -> tuple[str, ...]: ...


def is_url(ref: str) -> bool:
    return ref.startswith(("http://", "https://"))


def outside_refs(item: _Item, ids: Iterable[str]) -> tuple[str, ...]:
    """The item's references that are not items of the job: files and URLs, in order. Pass
    the ids as a set when asking for every item (a list would be copied each time)."""
    if not item.references:
        return ()
    known = ids if isinstance(ids, set | frozenset) else set(ids)
    return tuple(ref for ref in item.references if ref not in known)


def dependencies(
    items: Sequence[_Item], consistency: str, anchor: str | None
) -> dict[str, tuple[str, ...]]:
    """The items each item waits for, by id: the anchor first (with `first-as-reference`),
    then the item ids among its references, each once."""
    ids = {item.id for item in items}
    first = _anchor(items, consistency, anchor)
    graph: dict[str, tuple[str, ...]] = {}
    for item in items:
        own = [ref for ref in item.references if ref in ids]
        if first is not None and item.id != first:
            own.insert(0, first)
        graph[item.id] = tuple(dict.fromkeys(own))
    return graph


def graph_problem(items: Sequence[_Item], consistency: str, anchor: str | None) -> str | None:
    """What is wrong with the items' dependencies (a message naming the field), or None."""
    ids = {item.id: index for index, item in enumerate(items)}
    if anchor is not None:
        if consistency != FIRST_AS_REFERENCE:
            return f'anchor: an anchor needs "consistency": {FIRST_AS_REFERENCE!r}'
        if anchor not in ids:
            return f"anchor: {anchor!r} is not an item id of this job"
    for index, item in enumerate(items):
        if item.id in item.references:
            return f"items[{index}].references: item {item.id!r} cannot reference itself"
    cycle = _cycle(dependencies(items, consistency, anchor))
    if cycle is not None:
        index = ids[cycle[0]]
        path = " -> ".join(cycle)
        return f"items[{index}].references: the references go round in a circle ({path})"
    return None


def dependents_of(items: Iterable[_Recorded], item_ids: Iterable[str]) -> list[str]:
    """The items that wait for any of `item_ids`, directly or through others, in job order
    (not `item_ids` themselves)."""
    listed = list(items)
    waiting: dict[str, list[str]] = {}
    for item in listed:
        for dep in item.depends_on:
            waiting.setdefault(dep, []).append(item.id)
    start = set(item_ids)
    found: set[str] = set()
    todo = list(start)
    while todo:
        for dependent in waiting.get(todo.pop(), ()):
            if dependent not in found and dependent not in start:
                found.add(dependent)
                todo.append(dependent)
    return [item.id for item in listed if item.id in found]


def _anchor(items: Sequence[_Item], consistency: str, anchor: str | None) -> str | None:
    if consistency != FIRST_AS_REFERENCE or not items:
        return None
    return anchor if anchor is not None else items[0].id


def _cycle(graph: Mapping[str, tuple[str, ...]]) -> list[str] | None:
    """A cycle of the graph as a path that ends where it starts, or None (iterative DFS)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in graph:
        if state.get(root):
            continue
        path: list[str] = [root]
        stack = [iter(graph.get(root, ()))]
        state[root] = 1
        while stack:
            step = next(stack[-1], None)
            if step is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(step) == 1:
                return [*path[path.index(step) :], step]
            elif not state.get(step):
                state[step] = 1
                path.append(step)
                stack.append(iter(graph.get(step, ())))
    return None
