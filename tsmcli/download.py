"""Files from the internet, cached where torch.hub caches them: ImageNet weights and the model zoo's
checkpoints, downloaded once, with a progress bar, and checked against the hash in their name.

TSM_DOWNLOAD_MIRROR=http://host/dir fetches https://HOST/PATH from http://host/dir/HOST/PATH instead (a
local mirror, as `wget -x` lays one out).
"""
import hashlib
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from .atomic import atomic_path
from .errors import UserError

_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,})\.pth$")  # torchvision's and OpenMMLab's: a sha256 prefix


def cache_dir():
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def mirrored(url):
    mirror = os.environ.get("TSM_DOWNLOAD_MIRROR")
    if not mirror:
        return url
    return mirror.rstrip("/") + "/" + url.split("://", 1)[1]


def cached_download(url, what="file", progress=True):
    """The local path of `url`'s file in the cache, downloading it first if it is not there."""
    name = url.rsplit("/", 1)[1]
    target = cache_dir() / name
    if target.is_file():
        return target
    source = mirrored(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as out:
            digest = _fetch(source, out, f"{what} {name}", progress)
        expected = _HASH_IN_NAME.search(name)
        if expected and not digest.startswith(expected.group(1)):
            raise UserError(f"downloaded {source}, but its sha256 {digest[:12]}... does not start with "
                            f"{expected.group(1)} as its name says: a broken download or a wrong mirror; "
                            "nothing was saved, try again")
    return target


def _fetch(url, out, label, progress):
    from tqdm import tqdm

    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            sha = hashlib.sha256()
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=f"downloading {label}",
                      disable=not progress, leave=False) as bar:
                while True:
                    chunk = response.read(1 << 20)
                    if not chunk:
                        break
                    out.write(chunk)
                    sha.update(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", None) or e
        raise UserError(f"cannot download {url} ({reason}).\nWithout network access, place the file "
                        f"{url.rsplit('/', 1)[1]} in {cache_dir()}/ (or set TORCH_HOME), or set "
                        "TSM_DOWNLOAD_MIRROR to a mirror") from None
    return sha.hexdigest()

