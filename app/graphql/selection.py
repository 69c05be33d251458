"""What a document asks of a field's result, so a use case can skip work nobody reads."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from graphql import FieldNode, FragmentSpreadNode, InlineFragmentNode, SelectionSetNode


def asks_for(info: Any, names: Iterable[str]) -> bool:
    """True unless the selection of the field being resolved provably names none of `names`
    (fragments are followed; anything unexpected counts as asking)."""
    raw = getattr(info, "_raw_info", info)  # Strawberry's Info wraps graphql-core's
    wanted = set(names)
    fragments = getattr(raw, "fragments", None) or {}
    seen: set[str] = set()

    def walk(selection_set: SelectionSetNode | None) -> bool:
        if selection_set is None:
            return False
        for node in selection_set.selections:
            if isinstance(node, FieldNode):
                if node.name.value in wanted:
                    return True
            elif isinstance(node, InlineFragmentNode):
                if walk(node.selection_set):
                    return True
            elif isinstance(node, FragmentSpreadNode):
                name = node.name.value
                if name in seen:
                    continue
                seen.add(name)
                fragment = fragments.get(name)
                if fragment is None or walk(fragment.selection_set):
                    return True
            else:
                return True
        return False

    field_nodes = getattr(raw, "field_nodes", None)
    if not field_nodes:
        return True
    return any(walk(node.selection_set) for node in field_nodes)
