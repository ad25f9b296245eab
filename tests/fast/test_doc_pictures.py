"""Every picture the README and docs/ show is there, a PNG, and where a tool draws it, the tool names it."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+\.png)\)")


def test_every_picture_shown_exists():
    shown = []
    for document in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in IMAGE.findall(document.read_text()):
            picture = (document.parent / target).resolve()
            shown.append(picture)
            assert picture.is_file(), f"{document.name} shows {target}, which is not there"
            assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", picture
    assert ROOT / "docs" / "grafana" / "redisai.png" in shown  # the dashboard, in the README


def test_the_dashboard_picture_is_drawn_from_the_dashboard_it_shows():
    tool = (ROOT / "tools" / "dashboard_picture.py").read_text()
    assert 'DASHBOARD = ROOT / "docs" / "grafana" / "redisai.json"' in tool
    assert '"docs" / "grafana" / "redisai.png"' in tool
    compile(tool, "dashboard_picture.py", "exec")
