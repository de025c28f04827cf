"""Open an rltuner HTML report in headless Chromium with no network and check it.

The report carries a small inline script that, after the page loads, records into the
``data-check`` attribute of ``<body>`` how many images decoded (``naturalWidth > 0``) and how
many ``<audio>`` elements have a positive duration (their embedded WAV data was read). This
script dumps the DOM with ``--dump-dom`` (after a virtual-time budget so the media metadata
loads), reads that attribute, and takes a screenshot.

Network is off: every host resolves to nothing (``--host-resolver-rules``), background
networking, component updates and sync are disabled, and a fresh profile is used.

    python scripts/check_report_chromium.py REPORT.html [--screenshot docs/report_screenshot.png]

Exit status 0 when every image decoded and every audio element has data, 1 otherwise, 2 when
Chromium is missing. Debian: ``apt-get install chromium``.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")
OFFLINE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)


def find_chromium() -> str | None:
    for name in CHROMIUM_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(cmd: list[str], timeout: float) -> str:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"chromium failed ({res.returncode}): {res.stderr[-2000:]}")
    return res.stdout


def check_report(
    report: str | Path,
    screenshot: str | Path | None = None,
    chromium: str | None = None,
    timeout: float = 120.0,
    window: str = "1280,2400",
) -> dict:
    """Load ``report`` headless and offline; return the ``data-check`` record plus ``ok``.

    Raises ``FileNotFoundError`` if Chromium is missing and ``RuntimeError`` if it fails or
    the page did not record its check."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("chromium not found (Debian: apt-get install chromium)")
    url = Path(report).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="rltuner-chromium-") as profile:
        base = [chromium, *OFFLINE_FLAGS, f"--user-data-dir={profile}"]
        dom = _run([*base, "--virtual-time-budget=15000", "--dump-dom", url], timeout)
        m = re.search(r'<body[^>]*\sdata-check="([^"]*)"', dom)
        if not m:
            raise RuntimeError("the page did not record its check (no data-check on <body>)")
        record = json.loads(html.unescape(m.group(1)))
        if screenshot is not None:
            shot = Path(screenshot).resolve()
            shot.parent.mkdir(parents=True, exist_ok=True)
            _run([*base, "--hide-scrollbars", f"--window-size={window}",
                  "--virtual-time-budget=5000", f"--screenshot={shot}", url], timeout)  # fmt: skip
            record["screenshot"] = str(shot)
    record["ok"] = bool(
        record["images"] > 0
        and record["images_decoded"] == record["images"]
        and record["audio"] > 0
        and record["audio_with_duration"] == record["audio"]
    )
    return record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", help="the HTML report to check")
    ap.add_argument("--screenshot", help="write a PNG screenshot here")
    ap.add_argument("--chromium", help="browser executable (default: search PATH)")
    args = ap.parse_args(argv)
    try:
        record = check_report(args.report, args.screenshot, args.chromium)
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 2
    print(json.dumps(record, indent=2))
    return 0 if record["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
