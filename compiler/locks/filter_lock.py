#!/usr/bin/env python3
"""Cut a `uv pip compile --generate-hashes` output down to the files that can
be installed on one target, and check it.

uv writes a hash for every file of each pinned version (Windows, macOS,
aarch64, musl, other CPythons...).  This keeps, per pin, the hashes of the
wheels whose tags the target accepts (CPython X.Y, manylinux_2_N x86_64 with
N <= the target's glibc), and the sdist only where no such wheel exists (that
pin would build from source at install time; it is reported).

Each file's hash is taken from PyPI's simple index (PEP 691 JSON) and must
also be one uv wrote.  Exit status 1 if a pin has no installable file, is
yanked, or its files' Requires-Python excludes the target.

usage: filter_lock.py RAW OUT --python 3.12 --glibc 2.39 --header-file H [--report J]
"""
import argparse
import json
import re
import sys
import urllib.request
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import (canonicalize_name, parse_sdist_filename,
                             parse_wheel_filename)
from packaging.version import Version

INDEX = "https://pypi.org/simple/"
CACHE = Path(__file__).with_name(".index-cache")


def target_tags(py: str, glibc: str):
    major, minor = (int(x) for x in py.split("."))
    gmaj, gmin = (int(x) for x in glibc.split("."))
    plats = [f"manylinux_{gmaj}_{m}_x86_64" for m in range(gmin, 4, -1)]
    # legacy aliases, as pip accepts them on glibc >= 2.17 / 2.12 / 2.5
    plats += ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64",
              "linux_x86_64"]
    abi = f"cp{major}{minor}"
    tags = list(cpython_tags((major, minor), [abi], plats))
    tags += list(compatible_tags((major, minor), abi, plats))
    return set(tags)


def index_files(name: str):
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"{name}.json"
    if not path.exists():
        req = urllib.request.Request(
            INDEX + name + "/",
            headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            path.write_bytes(r.read())
    return json.loads(path.read_text())["files"]


def blocks(text: str):
    """Yield (pin_line, hashes, trailing_comment_lines) for each pin."""
    cur = None
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==(\S+)", line)
        if m:
            if cur:
                yield cur
            cur = {"name": m.group(1), "version": m.group(2), "hashes": [], "comments": []}
        elif cur is not None:
            h = re.search(r"--hash=sha256:([0-9a-f]{64})", line)
            if h:
                cur["hashes"].append(h.group(1))
            elif line.strip().startswith("#"):
                cur["comments"].append(line)
    if cur:
        yield cur


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("raw")
    ap.add_argument("out")
    ap.add_argument("--python", required=True)
    ap.add_argument("--glibc", required=True)
    ap.add_argument("--header-file", required=True)
    ap.add_argument("--report")
    a = ap.parse_args()

    tags = target_tags(a.python, a.glibc)
    pyver = Version(a.python + ".99")  # any patch release of X.Y
    out = [Path(a.header_file).read_text().rstrip("\n")]
    problems, sdist_only, rows = [], [], []
    for b in blocks(Path(a.raw).read_text()):
        name = canonicalize_name(b["name"])
        ver = Version(b["version"])
        uv_hashes = set(b["hashes"])
        keep_wheels, sdists = [], []
        for f in index_files(name):
            fn = f["filename"]
            try:
                if fn.endswith(".whl"):
                    _, v, _, ftags = parse_wheel_filename(fn)
                    kind = "wheel"
                else:
                    _, v = parse_sdist_filename(fn)
                    kind, ftags = "sdist", set()
            except Exception:
                continue
            if v != ver:
                continue
            sha = f["hashes"].get("sha256")
            if sha not in uv_hashes:
                problems.append(f"{name}=={ver}: {fn} hash {sha} not in uv output")
                continue
            rp = f.get("requires-python")
            if rp and not SpecifierSet(rp).contains(pyver, prereleases=True):
                continue
            if f.get("yanked"):
                problems.append(f"{name}=={ver}: {fn} is yanked")
            if kind == "wheel" and ftags & tags:
                keep_wheels.append((fn, sha, rp))
            elif kind == "sdist":
                sdists.append((fn, sha, rp))
        keep = keep_wheels or sdists
        if not keep:
            problems.append(f"{name}=={ver}: no file installable on cp{a.python} manylinux_{a.glibc} x86_64")
        if not keep_wheels and sdists:
            sdist_only.append(f"{name}=={ver}")
        out.append(f"{b['name']}=={b['version']}" + (" \\" if keep else ""))
        for i, (fn, sha, _) in enumerate(sorted(keep)):
            out.append(f"    --hash=sha256:{sha}" + (" \\" if i < len(keep) - 1 else ""))
        out.extend(b["comments"])
        rows.append({"name": str(name), "version": str(ver),
                     "files": [fn for fn, _, _ in sorted(keep)],
                     "requires_python": sorted({rp or "" for _, _, rp in keep}),
                     "uv_hashes": len(uv_hashes), "kept_hashes": len(keep)})
    if sdist_only:
        out.insert(1, "# WARNING: no wheel for this target, so pip builds these from the sdist: "
                   + ", ".join(sdist_only))
    Path(a.out).write_text("\n".join(out) + "\n")
    if a.report:
        Path(a.report).write_text(json.dumps(
            {"packages": rows, "sdist_only": sdist_only, "problems": problems}, indent=1))
    print(f"{a.out}: {len(rows)} pins, "
          f"{sum(r['uv_hashes'] for r in rows)} hashes from uv -> "
          f"{sum(r['kept_hashes'] for r in rows)} kept; "
          f"sdist-only: {sdist_only or 'none'}")
    for p in problems:
        print("PROBLEM:", p, file=sys.stderr)
    return 1 if any("no file installable" in p or "yanked" in p for p in problems) else 0


if __name__ == "__main__":
    sys.exit(main())
