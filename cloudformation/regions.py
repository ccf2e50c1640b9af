"""The AWS regions botocore knows, so that deploy.sh refuses a made-up one (`mars-1`) before it
renders or calls anything, instead of failing later on an endpoint that does not resolve."""
from __future__ import annotations

import difflib
import re
from typing import List, Optional

import botocore
import botocore.session

from .errors import UnknownRegionError

__all__ = ["known_regions", "check_region"]

# A partition's region list also holds pseudo regions (aws-global, aws-cn-global): real region
# names end in a number.
_REGION_NAME = re.compile(r"[a-z]+(-[a-z]+)+-\d+")


def known_regions(session: Optional[botocore.session.Session] = None) -> List[str]:
    """Every region of every partition in botocore's endpoint data (`partitions.json` and the
    older `endpoints.json`: either may list a region first), sorted."""
    session = session or botocore.session.get_session()
    names = set()
    for data, key in (("partitions", "id"), ("endpoints", "partition")):
        try:
            partitions = session.get_data(data)["partitions"]
        except Exception:  # an older botocore without partitions.json: the other one suffices
            continue
        for partition in partitions:
            names.update(partition.get("regions", {}))
    return sorted(n for n in names if _REGION_NAME.fullmatch(n) and not n.startswith("aws-"))


def check_region(name: str, session: Optional[botocore.session.Session] = None) -> None:
    """Raise UnknownRegionError unless `name` is a region botocore knows; the message offers the
    nearest names and says what to do if the region is newer than this botocore."""
    regions = known_regions(session)
    if name in regions:
        return
    near = difflib.get_close_matches(name, regions, n=2, cutoff=0.75)
    guess = f"; did you mean {' or '.join(near)}?" if near else ""
    raise UnknownRegionError(
        f"region {name!r} does not exist{guess} (botocore {botocore.__version__} knows "
        f"{len(regions)} regions, e.g. us-east-1, eu-west-1); pass --region with one of them "
        f"(aws ec2 describe-regions lists your account's), or upgrade botocore if {name} is "
        "newer than it")
