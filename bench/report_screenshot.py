"""A PNG of a class report as a browser shows it, rendered by headless Chromium (Debian's
`chromium` package: apt-get install -y chromium).

Usage: python bench/report_screenshot.py REPORT.html OUT.png [--height 2400]
Chromium runs with a throwaway profile and no network helpers; the page itself loads nothing.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def screenshot(html, png, width=1280, height=2400):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("chromium is not installed (Debian: apt-get install -y chromium)")
    with tempfile.TemporaryDirectory(prefix="fmgrade-chromium-") as profile:
        command = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            f"--screenshot={Path(png).resolve()}",
            f"--window-size={width},{height}",
            Path(html).resolve().as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or not Path(png).is_file():
        sys.exit(f"chromium failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return Path(png)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html")
    parser.add_argument("png")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2400)
    args = parser.parse_args()
    print(f"wrote {screenshot(args.html, args.png, args.width, args.height)}")


if __name__ == "__main__":
    main()
