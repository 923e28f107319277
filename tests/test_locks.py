"""The hashed pip locks a first boot installs from: every package pinned with a hash, the
top-level pins the versions images.py pins, and every lock's Python the one the clouds'
boot images have."""

from __future__ import annotations

import re

import pytest

from stackc import images, locks
from stackc.engines.base import parse_version, version_text


def pins(text: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a requirements file in pip's hash-checking form."""
    out: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)", line)
        if m:
            current = m.group(1).lower()
            out[current] = (m.group(2), [])
        elif current and (h := re.search(r"--hash=sha256:([0-9a-f]{64})", line)):
            out[current][1].append(h.group(1))
    return out


@pytest.mark.parametrize("lock", locks.all_locks(), ids=lambda lock: lock.file)
def test_every_package_is_pinned_with_a_hash(lock):
    text = lock.text().decode()
    found = pins(text)
    assert len(found) > 50
    assert all(hashes for _, hashes in found.values()), [n for n, (_, h) in found.items() if not h]
    # no line pip would read as an unpinned requirement
    for line in text.splitlines():
        if line and not line.startswith((" ", "#")):
            assert "==" in line, line
    for requirement in lock.requirement.split():
        name, version = requirement.split("==")
        assert found[name.split("[")[0]][0] == version, requirement


def test_the_locks_pin_what_images_pins():
    vllm = version_text(parse_version(images.VLLM.tag))
    sglang = version_text(parse_version(images.SGLANG.tag))
    assert locks.engine_lock("vllm", parse_version(images.VLLM.tag), False).requirement == f"vllm=={vllm}"
    assert locks.engine_lock("vllm", parse_version(images.VLLM.tag), True).requirement == f"vllm=={vllm} {locks.LMCACHE}"
    assert locks.engine_lock("sglang", parse_version(images.SGLANG.tag), False).requirement == f"sglang[all]=={sglang}"
    assert locks.GATEWAY.requirement.split()[0] == images.GATEWAY_LITELLM_PYPI
    assert images.GATEWAY_LITELLM.tag == "v" + images.GATEWAY_LITELLM_PYPI.split("==")[1]
    # the lock with LMCache holds the same vLLM and torch as the one without
    plain = pins(locks.engine_lock("vllm", (0, 33, 0), False).text().decode())
    with_lmcache = pins(locks.engine_lock("vllm", (0, 33, 0), True).text().decode())
    assert plain["vllm"] == with_lmcache["vllm"] and plain["torch"] == with_lmcache["torch"]


def test_no_lock_for_a_version_stackc_does_not_pin():
    assert locks.engine_lock("vllm", (0, 20, 0), False) is None
    assert locks.requirement("vllm", (0, 20, 0), True) == f"vllm==0.20.0 {locks.LMCACHE}"
    assert locks.requirement("sglang[all]", (0, 5, 22), False) == "sglang[all]==0.5.22"


@pytest.mark.parametrize("lock", locks.all_locks(), ids=lambda lock: lock.file)
def test_each_lock_admits_the_python_it_was_resolved_for(lock):
    assert lock.admits(locks.PYTHON)
    assert f"CPython {'.'.join(map(str, locks.PYTHON))}" in lock.text().decode()[:2000]
