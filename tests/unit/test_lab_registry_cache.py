"""The lab registry's storage outlives the lab: a build already pushed is not pushed again (lab.image_supply)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lab import image_supply
from lab.images import LabImages


class Registry:
    def __init__(self, storage: Path) -> None:
        self.storage = storage
        self.pushed: list[str] = []

    def push(self, source: str, name: str) -> str:
        self.pushed.append(name)
        return name

    def tag(self, repo: str, source_tag: str, tags: Any) -> None:
        pass


def images(cache: Path, stamp: str) -> LabImages:
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "build.json").write_text(stamp)
    return LabImages(cache / "oci-layout", cache / "a.tar", cache / "b.tar", cache / "build.json")


async def test_a_build_is_pushed_once_and_again_only_when_rebuilt(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "registry")
    reg.storage.mkdir()
    built = images(tmp_path, '{"version": 1}')
    first = await image_supply.push_images(reg, built)  # type: ignore[arg-type]
    assert reg.pushed and "tags" in first
    n = len(reg.pushed)
    again = await image_supply.push_images(reg, built)  # type: ignore[arg-type]
    assert len(reg.pushed) == n and again.startswith("already in")
    rebuilt = images(tmp_path, '{"version": 2}')
    await image_supply.push_images(reg, rebuilt)  # type: ignore[arg-type]
    assert len(reg.pushed) == 2 * n


async def test_a_failed_push_leaves_no_marker(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "registry")
    reg.storage.mkdir()

    def fail(source: str, name: str) -> str:
        raise RuntimeError("skopeo copy failed")
    reg.push = fail  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await image_supply.push_images(reg, images(tmp_path, "{}"))  # type: ignore[arg-type]
    assert not (reg.storage / "pushed.json").exists()
