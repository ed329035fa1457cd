"""Parse fidelity, without a daemon: Palisade's parse of the corpus against CPython's `email`
(fidelity/fidelity.py and its reviewed fidelity/expectations.json), and the issue-10 fixtures
(fidelity/cases) against the values Palisade must produce.

It needs only `palisade-admin parse`, so it does not depend on the storage backend and runs once,
on the embedded pass of the suite.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from palisade_e2e import ADMIN_BIN, BACKEND, CORPUS_DIR, E2E_DIR

sys.path.insert(0, str(E2E_DIR / "fidelity"))
import fidelity  # noqa: E402

pytestmark = pytest.mark.skipif(BACKEND != "embedded",
                                reason="backend independent: runs once, on the embedded pass")
CASES = fidelity.load_cases()


@pytest.fixture(scope="module")
def case_views(binaries) -> dict[str, dict]:
    return fidelity.palisade_views(ADMIN_BIN, fidelity.CASES_DIR)


def test_the_corpus_has_no_unreviewed_disagreement(binaries):
    if not (CORPUS_DIR / "MANIFEST.tsv").is_file():
        pytest.fail(f"corpus not found at {CORPUS_DIR} (set PALISADE_CORPUS)", pytrace=False)
    r = subprocess.run([sys.executable, str(E2E_DIR / "fidelity" / "fidelity.py"), str(CORPUS_DIR),
                        "--admin", str(ADMIN_BIN)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"fidelity.py failed ({r.returncode}):\n{r.stdout[-20000:]}\n{r.stderr[-5000:]}"
    assert "messages compared: " in r.stdout and "messages compared: 0" not in r.stdout, r.stdout


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture(case_views, name):
    expected = CASES[name]
    assert name in case_views, f"fixture {name} missing from fidelity/cases"
    problems = fidelity.check_case(expected, case_views[name])
    if expected.get("pending"):
        if problems:
            pytest.skip(f"pending, {expected['pending']}: " + "; ".join(problems))
        pytest.fail(f"{name} now meets its expectations: remove its `pending` in cases/expected.json",
                    pytrace=False)
    assert not problems, f"{name} ({expected['what']}):\n  " + "\n  ".join(problems)


def test_every_fixture_has_expectations_and_every_class_a_fixture():
    files = sorted(p.name for p in fidelity.CASES_DIR.glob("*.eml"))
    assert files == sorted(CASES), "cases/*.eml and cases/expected.json disagree"
    assert {c["class"] for c in CASES.values()} == {"1", "2", "3", "4", "5", "6"}


def test_the_checker_catches_a_wrong_parse(case_views):
    # Guards against a checker that passes everything: a met case must fail once spoiled.
    met = next(n for n, c in sorted(CASES.items()) if not c.get("pending") and "subject" in c)
    spoiled = dict(case_views[met], subject="something else", attachments=[
        {"file_name": None, "content_type": "multipart/mixed"}])
    problems = fidelity.check_case(CASES[met], spoiled)
    assert any(p.startswith("subject") for p in problems), problems
    assert any("multipart" in p for p in problems), problems
