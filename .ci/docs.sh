#!/usr/bin/env bash
# Build the documentation site exactly as CI checks it: `bash .ci/docs.sh`.
#
# Installs the docs tools into the virtualenv when they are missing (the requirements of the
# package's `docs` extra, or the two packages by name if the extra is not there yet), runs
# `mkdocs build --strict` into a temporary directory (any warning fails), then checks that
# the API reference rendered every public member of every module it documents.
#
# Environment: PWT_CI_VENV (virtualenv, default .ci/venv), PWT_DOCS_SITE (keep the built
# site in this directory instead of a temporary one).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
VENV="${PWT_CI_VENV:-$ROOT/.ci/venv}"
PY="$VENV/bin/python"

if ! "$PY" -c "import mkdocs, material, mkdocstrings_handlers.python" 2>/dev/null; then
    # The requirements of the package's `docs` extra, read from its installed metadata (no
    # reinstall, no rebuild of the extensions); the two packages by name if it has none yet.
    mapfile -t DOCS_REQUIREMENTS < <("$PY" - <<'PYEOF'
import re
from importlib.metadata import PackageNotFoundError, requires

try:
    found = requires("pywebtransport") or []
except PackageNotFoundError:
    found = []
docs = [r.split(";")[0].strip() for r in found if re.search(r"""extra\s*==\s*["']docs["']""", r)]
print("\n".join(docs or ["mkdocs-material", "mkdocstrings[python]"]))
PYEOF
    )
    echo "installing the documentation tools: ${DOCS_REQUIREMENTS[*]}"
    "$PY" -m pip install -q "${DOCS_REQUIREMENTS[@]}"
fi

if [ -n "${PWT_DOCS_SITE:-}" ]; then
    SITE="$PWT_DOCS_SITE"
else
    SITE_PARENT="$(mktemp -d)"
    trap 'rm -rf "$SITE_PARENT"' EXIT
    SITE="$SITE_PARENT/site"
fi

export NO_MKDOCS_2_WARNING=1
"$PY" -m mkdocs build --strict --site-dir "$SITE"

# Every public member of every module the reference documents must have rendered.
"$PY" - "$SITE" <<'PYEOF'
import importlib
import inspect
import re
import sys
from pathlib import Path

site = Path(sys.argv[1])
missing = []
checked = 0
for page in sorted(Path("docs/reference").glob("*.md")):
    match = re.search(r"^::: (pywebtransport\.\w+)\s*$", page.read_text(), re.M)
    if match is None:
        continue
    name = match.group(1)
    html = (site / "reference" / page.stem / "index.html").read_text()
    anchors = set(re.findall(r'id="(pywebtransport\.[\w.]+)"', html))
    module = importlib.import_module(name)
    for public in getattr(module, "__all__", []):
        checked += 1
        value = getattr(module, public)
        # A public alias of something defined in a private module may be rendered under the
        # name of its definition (see docs/reference/protocol.md).
        if inspect.ismodule(value):
            where = value.__name__
        elif inspect.isclass(value):
            where = f"{value.__module__}.{value.__qualname__}"
        else:
            where = f"{name}.{public}"
        here = f"{name}.{public}"
        prefix = here if any(a.startswith(here + ".") for a in anchors) or where not in anchors else where
        if f"{name}.{public}" not in anchors and where not in anchors:
            missing.append(f"{name}.{public}")
            continue
        if inspect.ismodule(value) and value.__name__.startswith("pywebtransport"):
            for member in getattr(value, "__all__", []):
                checked += 1
                if f"{where}.{member}" not in anchors:
                    missing.append(f"{where}.{member}")
            continue
        if not inspect.isclass(value) or not value.__module__.startswith("pywebtransport"):
            continue
        for klass in value.__mro__:
            if not klass.__module__.startswith("pywebtransport"):
                continue
            for member in vars(klass):
                if member.startswith("_") or (member in vars(value) and klass is not value):
                    continue
                checked += 1
                if f"{prefix}.{member}" not in anchors:
                    missing.append(f"{prefix}.{member}")
if missing:
    sys.exit("the API reference is missing members:\n  " + "\n  ".join(sorted(set(missing))))
print(f"API reference: {checked} public names and members rendered")
PYEOF
echo "documentation built (mkdocs build --strict)${PWT_DOCS_SITE:+ in $SITE}"
