#!/usr/bin/env bash
# Does every hard dependency of the wheel have a binary wheel for each platform our users have? Builds the
# wheel, reads its Requires-Dist (extras left out) and asks pip to resolve each dependency, binaries only,
# for Python 3.12 on Linux x86_64, Linux aarch64, macOS arm64 and Windows amd64. Exit 1 when one fails.
# CI runs it (.ci/run); `bash scripts/check_platforms.sh decord` shows a dependency that fails (no macOS
# arm64 or Linux aarch64 wheel), which is why decord is an extra.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r pyproject.toml README.md tsmcli "$tmp/"
"$PY" -m pip wheel -q --no-deps --no-build-isolation "$tmp" -w "$tmp/wheel" >/dev/null
wheel=$(ls "$tmp"/wheel/tsm-*.whl)
if [ $# -gt 0 ]; then
    deps=("$@")
else
    mapfile -t deps < <("$PY" - "$wheel" <<'PY'
import sys, zipfile
from email.parser import Parser
with zipfile.ZipFile(sys.argv[1]) as z:
    meta = Parser().parsestr(z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode())
for requirement in meta.get_all("Requires-Dist"):
    if "extra ==" not in requirement:
        print(requirement.split(";")[0].strip())
PY
)
fi
echo "$(basename "$wheel"): ${deps[*]}"
failed=0
# pip takes the tags it is given literally (macOS versions aside): a Linux platform lists the manylinux tags
# a glibc 2.28 system (Debian 10, Ubuntu 18.10, RHEL 8, Jetson's L4T 32) accepts
declare -A TAGS=(
    [linux-x86_64]="manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux2010_x86_64 manylinux1_x86_64"
    [linux-aarch64]="manylinux_2_28_aarch64 manylinux_2_17_aarch64 manylinux2014_aarch64"
    [macos-arm64]="macosx_14_0_arm64"
    [windows-amd64]="win_amd64"
)
for platform in linux-x86_64 linux-aarch64 macos-arm64 windows-amd64; do
    report="$tmp/$platform.json"
    tags=()
    for tag in ${TAGS[$platform]}; do tags+=(--platform "$tag"); done
    if "$PY" -m pip install -q --dry-run --ignore-installed --no-deps --only-binary=:all: "${tags[@]}" \
            --python-version 3.12 --report "$report" "${deps[@]}" 2>"$tmp/err"; then
        "$PY" - "$report" "$platform" <<'PY'
import json, sys
found = json.load(open(sys.argv[1]))["install"]
print(f"ok   {sys.argv[2]:24} " + ", ".join(
    f"{i['metadata']['name']} {i['metadata']['version']} ({i['download_info']['url'].rsplit('/', 1)[-1].split('-')[-1]})"
    for i in found))
PY
    else
        echo "FAIL $platform: $(grep -v '^WARNING' "$tmp/err" | tail -2 | tr '\n' ' ')"
        failed=1
    fi
done
exit $failed
