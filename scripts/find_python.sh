#!/usr/bin/env bash
# Print the path of a Python >= 3.12 interpreter, or explain how to get one and fail.
# Order: $PYTHON, python3.13 / python3.12 / python3 on PATH, pyenv's installed versions, `uv python find`.
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
cands=()
[ -n "${PYTHON:-}" ] && cands+=("$PYTHON")
for n in python3.13 python3.12 python3; do command -v "$n" >/dev/null 2>&1 && cands+=("$(command -v "$n")"); done
root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
for d in $(ls -d "$root"/versions/3.1[2-9]* 2>/dev/null | sort -rV); do
  for n in python3.13 python3.12 python3; do [ -x "$d/bin/$n" ] && cands+=("$d/bin/$n"); done
done
command -v uv >/dev/null 2>&1 && u=$(uv python find '>=3.12' 2>/dev/null) && cands+=("$u")
for c in "${cands[@]}"; do if ok "$c"; then echo "$c"; exit 0; fi; done
echo "make setup: no Python >= 3.12 found (the DOLFINx wheel needs it). Tried \$PYTHON, python3.13," \
     "python3.12 and python3 on PATH, pyenv versions under $root, and 'uv python find'." \
     "Install one (e.g. 'pyenv install 3.12' or 'uv python install 3.12') or set PYTHON=/path/to/python3.12." >&2
exit 1
