"""Reading the hub's HTML in tests: which assets a page loads, which sections its navigation bar offers."""

from __future__ import annotations

from html.parser import HTMLParser


class _PageReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.assets: list[str] = []
        self.nav_labels: list[str] = []
        self._in_section_list = 0
        self._in_link = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "link" and attributes.get("href"):
            self.assets.append(attributes["href"])
        elif tag == "script" and attributes.get("src"):
            self.assets.append(attributes["src"])
        elif tag == "ul" and "me-auto" in (attributes.get("class") or "").split():
            self._in_section_list += 1
        elif tag == "a" and self._in_section_list:
            self._in_link = True
            self.nav_labels.append("")

    def handle_endtag(self, tag):
        if tag == "ul" and self._in_section_list:
            self._in_section_list -= 1
        elif tag == "a":
            self._in_link = False

    def handle_data(self, data):
        if self._in_link:
            self.nav_labels[-1] += data.strip()


def _read(html: str) -> _PageReader:
    reader = _PageReader()
    reader.feed(html)
    return reader


def assets_of(html: str) -> list[str]:
    """Every ``<link href>`` and ``<script src>`` of a page, in order."""
    return _read(html).assets


def nav_labels(html: str) -> list[str]:
    """The section links of the hub's navigation bar (its ``ul.me-auto``), in order."""
    return _read(html).nav_labels
