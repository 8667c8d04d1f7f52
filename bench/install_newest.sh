#!/usr/bin/env bash
# pip install synthroom into an environment that already holds the newest numpy, pandas and
# scikit-learn releases that pyproject.toml's ranges admit (a data scientist's environment):
# checks that the install leaves those three as they were, then runs tests there against the
# installed (not editable) package. Usage: bench/install_newest.sh [VENV] (default a scratch
# folder under /tmp, made anew). About 5 minutes with warm package caches.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-/tmp/synthroom-newest-venv}
python3 -m venv --clear "$venv"
py=$venv/bin/python
# the three packages' ranges, from pyproject.toml (e.g. "numpy>=2.4.6,<3" -> "numpy<3": the newest admitted)
mapfile -t newest < <("$py" - <<'PY'
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
for dep in deps:
    name = re.match(r"[A-Za-z0-9_.\-]+", dep).group(0)
    if name in ("numpy", "pandas", "scikit-learn"):
        print(name + ",".join(p for p in dep[len(name):].split(",") if p.startswith("<")))
PY
)
echo "newest admitted: ${newest[*]}"
"$venv/bin/pip" install -q "${newest[@]}"
before=$("$venv/bin/pip" freeze | grep -iE '^(numpy|pandas|scikit-learn)==' | sort)
"$venv/bin/pip" install -q '.[test]'   # the package itself, as a user installs it (no constraints file)
after=$("$venv/bin/pip" freeze | grep -iE '^(numpy|pandas|scikit-learn)==' | sort)
echo "before: $(echo $before)"
echo "after:  $(echo $after)"
if [ "$before" != "$after" ]; then
    echo "FAIL: installing synthroom changed numpy, pandas or scikit-learn" >&2
    exit 1
fi
# the tests of the library's core (synthesis, evaluation, gate, CLI, client, migrations), on the installed package
cd tests && "$py" -c "import synthroom, sys; assert 'site-packages' in synthroom.__file__, synthroom.__file__"
SYNTHROOM_ANONYMETER_PYTHON=/nonexistent "$py" -m pytest -q -p no:cacheprovider test_synthesizer.py \
    test_global_state.py test_pipeline_privacy.py test_client.py test_room_migrations.py test_schema.py test_accountant.py
