"""The policies' vocabulary check reads the words the resources use from the
model (build_model finds them in its one pass over the resources) instead of
walking every resource again for each of its two users (planner/lint.py,
planner/parameters.py): a cost that grew with the state (issue 12)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from domain.project import load_project
from planner.lint import vocabulary

ROOT = Path(__file__).resolve().parent.parent


def walked(model) -> dict[str, set[str]]:
    """The words every resource uses, found the long way."""
    out: dict[str, set[str]] = {"label key": set(), "relationship kind": set(), "capacity kind": set(), "param": set()}
    for res in model.resources.values():
        out["label key"] |= set(res.labels)
        out["relationship kind"] |= {kind for kind, _ in res.relations}
        out["capacity kind"] |= set(res.requires)
        out["param"] |= set(res.params)
    return out


class NotWalked(dict):
    def values(self):
        pytest.fail("the vocabulary walked the resources")

    def items(self):
        pytest.fail("the vocabulary walked the resources")

    def __iter__(self):
        pytest.fail("the vocabulary walked the resources")


@pytest.mark.parametrize("example, inventory, wanted", [
    ("vcpe", "inventory-deployed.yaml", "requests/add-customer.yaml"),
    ("vcpe", "inventory.yaml", "requests/instantiate.yaml"),
    ("vfw", "inventory-deployed.yaml", "requests/scale-out.yaml"),
])
def test_the_model_knows_the_words_its_resources_use(tmp_path: Path, example: str, inventory: str,
                                                     wanted: str) -> None:
    root = tmp_path / example
    shutil.copytree(ROOT / "examples" / example, root)
    model = load_project(root, root / wanted, root / inventory).model
    assert model.words == walked(model)
    assert model.words["label key"] and model.words["relationship kind"] and model.words["capacity kind"]
    known = vocabulary(dataclasses.replace(model, resources=NotWalked(model.resources)))
    assert {kind: known[kind] for kind in walked(model)} == {
        kind: words | {w for t in model.targets.values() for w in t.capacity} if kind == "capacity kind"
        else words | {"uses", "hosted_on", "member_of"} if kind == "relationship kind" else words
        for kind, words in walked(model).items()}
