"""AWS regions as botocore knows them: its own partition data (botocore/data/partitions.json).

The one check for a region, wherever it comes from (config's `region`, `--region`): a region botocore does
not know would fail later and less clearly (cfn-lint refuses it, endpoints resolve to nothing).
"""

from __future__ import annotations

import difflib
import json
import re
from functools import cache
from importlib import resources


@cache
def _partitions() -> list[dict]:
    # Read as data rather than through botocore.loaders: the same file, without importing botocore's
    # client machinery into commands (render, lint) that never call AWS.
    return json.loads((resources.files("botocore") / "data" / "partitions.json").read_text())["partitions"]


@cache
def known_regions() -> dict[str, str]:
    """Every region botocore knows -> its partition (aws, aws-cn, aws-us-gov, ...). The `aws-global`-style
    pseudo-regions of global endpoints are not places a stack can be deployed, so they are left out."""
    return {region: p["id"] for p in _partitions() for region in p["regions"] if not region.endswith("-global")}


def check_region(name: str) -> str:
    """`name` when botocore knows it; otherwise ValueError saying so, with the nearest region."""
    regions = known_regions()
    if name in regions:
        return name
    from botocore import __version__ as botocore_version

    near = difflib.get_close_matches(name.lower(), list(regions), n=1, cutoff=0.6)
    if near:
        hint = f"; did you mean '{near[0]}'?"
    elif any(re.match(p["regionRegex"], name) for p in _partitions()):
        hint = "; if it is a new region, a newer boto3 knows it"
    else:
        hint = " (regions look like us-east-1 or eu-west-1)"
    raise ValueError(f"'{name}' is not a region botocore {botocore_version} knows{hint}")
