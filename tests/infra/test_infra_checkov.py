"""checkov over the whole of infra/ (modules, envs and the rehearsal's override) reports no failed check, and every
skip says why, next to its resource."""

import json
import os
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest
from tfconfig import INFRA, ROOT, tf_files

CHECKOV_BIN = Path(os.environ.get("CHECKOV_BIN", ROOT / ".tools" / "checkov" / "bin" / "checkov"))
SKIP_COMMENT = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")


@cache
def checkov_report() -> dict:
    if not CHECKOV_BIN.exists():
        pytest.fail(
            f"checkov not found at {CHECKOV_BIN}: run `make tools-checkov` (or point CHECKOV_BIN at a checkov binary)"
        )
    result = subprocess.run(
        [
            str(CHECKOV_BIN),
            "--directory",
            str(INFRA),
            "--framework",
            "terraform",
            "--output",
            "json",
            "--skip-download",
            "--skip-path",
            r"\.terraform",
            "--download-external-modules",
            "false",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    # checkov exits 1 when a check fails; the JSON report is on stdout either way.
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report


def test_checkov_reports_no_failed_checks():
    report = checkov_report()
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]})"
        for c in report["results"]["failed_checks"]
    ]
    assert not failed, "checkov failed:\n" + "\n".join(failed)
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 100, "checkov evaluated far fewer checks than expected"


def test_checkov_scans_the_whole_infra_folder():
    """The rehearsal's override is scanned too: no folder of infra/ is left out."""
    report = checkov_report()
    scanned = {
        c["file_path"] for kind in ("passed_checks", "failed_checks", "skipped_checks") for c in report["results"][kind]
    }
    assert any(path.startswith("/rehearse/") for path in scanned), sorted(scanned)
    folders = {"/" + path.relative_to(INFRA).parent.as_posix() + "/" for path in tf_files()}
    assert folders <= {path.rsplit("/", 1)[0] + "/" for path in scanned}, folders


def test_checkov_skips_all_carry_a_reason():
    report = checkov_report()
    for check in report["results"]["skipped_checks"]:
        reason = (check["check_result"].get("suppress_comment") or "").strip()
        assert len(reason) > 20, f"{check['check_id']} on {check['resource']} is skipped without a reason"


def test_skip_comments_are_well_formed():
    for path in tf_files():
        for line in path.read_text().splitlines():
            if "checkov:skip" in line:
                match = SKIP_COMMENT.search(line)
                assert match and match.group(2), f"{path}: malformed skip {line.strip()!r}"
                assert re.fullmatch(r"CKV2?_AWS_\d+|CKV_TF_\d+", match.group(1)), line
