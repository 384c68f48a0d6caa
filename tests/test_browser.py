"""End to end in real headless Chromium (Debian's ``chromium``, driven by Playwright).

A real ``shingan serve`` process is started on a free loopback port; the browser uploads the
project's samples through the page. Skipped, with the reason, where no Chromium is installed
(``.ci/run`` installs it).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from samples.make_samples import IPTC, draw_scene, manifest, sign
from tests.conftest import CA, running_server, sample

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium installed (apt-get install chromium; .ci/run does)"
)
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data = tmp_path_factory.mktemp("serve")
    with running_server(data, SHINGAN_TRUST_ANCHORS=str(CA / "root.pem")) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    pg = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:  # an alert() from injected markup would land here
        dialogs.append(dialog.message)
        dialog.dismiss()

    pg.on("dialog", on_dialog)
    pg.dialogs = dialogs
    try:
        yield pg
    finally:
        context.close()


def check(page: Any, base: str, path: Path, lang: str = "en") -> float:
    """Upload through the page; returns seconds from submit to the rendered verdict."""
    page.goto(f"{base}/?lang={lang}")
    page.set_input_files("input[type=file]", str(path))
    start = time.monotonic()
    page.click("button[type=submit]")
    page.wait_for_selector("#verdict-h", timeout=120_000)
    return time.monotonic() - start


def label(page: Any) -> str:
    """The verdict's label (the banner shows it in plain words)."""
    return str(page.get_attribute("#verdict-h", "data-label"))


def test_trusted_sample(page: Any, server: str) -> None:
    check(page, server, sample("camera_capture.jpg"))
    assert label(page) == "authentic"
    assert page.inner_text("#verdict-h") == "Signed by a trusted source, not altered since"
    assert "trusted signer" in page.inner_text(".banner .summary")


def test_ai_declared_sample_shows_the_ingredient_tree(page: Any, server: str) -> None:
    check(page, server, sample("composite_ai_ingredient.jpg"))
    assert label(page) == "ai_generated"
    tree = page.inner_text("ul.tree")
    assert "camera_capture.jpg" in tree
    assert "ai_generated.png" in tree
    assert page.locator("ul.tree img.thumb").count() == 2


def test_tampered_sample(page: Any, server: str) -> None:
    check(page, server, sample("tampered.jpg"))
    assert label(page) == "manipulated"
    assert "assertion.dataHash.mismatch" in page.inner_text("#c2pa-h ~ dl")


def test_video_sample(page: Any, server: str) -> None:
    seconds = check(page, server, sample("signed_video.mp4"))
    assert label(page) == "authentic"
    assert page.locator("#tl-h").count() == 1
    assert page.locator("figure.chart polyline.series").count() == 1
    assert page.locator("figure.chart line.threshold").count() == 1
    assert seconds < 60


def test_phone_width_has_no_horizontal_scroll(browser: Any, server: str) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 740})
    pg = context.new_page()
    try:
        check(pg, server, sample("composite_ai_ingredient.jpg"))
        overflow = pg.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1
        pg.keyboard.press("Tab")  # keyboard reaches the first link
        assert pg.evaluate("document.activeElement.tagName") == "A"
    finally:
        context.close()


def test_language_switch(page: Any, server: str) -> None:
    page.goto(f"{server}/?lang=en")
    page.click("a.lang")
    assert page.get_attribute("html", "lang") == "ja"
    assert "ファイルを確認" in page.inner_text("button[type=submit]")
    check(page, server, sample("tampered.jpg"), lang="ja")
    assert "署名後に変更" in page.inner_text(".banner .summary")


def test_hostile_strings_show_as_text_and_run_nothing(
    page: Any, server: str, tmp_path: Path
) -> None:
    evil = '<script>alert("title")</script><img src=x onerror=alert("img")>'
    exif_comment = '<img src=y onerror=alert("exif")>'
    from PIL import Image

    exif = Image.Exif()
    exif[0x010F] = exif_comment  # Make
    exif[0x0131] = "<script>alert('sw')</script>"  # Software
    raw_path = tmp_path / "raw.jpg"
    Image.fromarray(draw_scene(320, 240, seed=8)).save(raw_path, exif=exif)
    signed = sign(
        raw_path.read_bytes(),
        "image/jpeg",
        manifest(
            evil,
            [{"action": "c2pa.created", "digitalSourceType": IPTC + "digitalCapture"}],
            "image/jpeg",
        ),
        "signer-es256",
    )
    path = tmp_path / "evil.jpg"
    path.write_bytes(signed)
    check(page, server, path)
    assert page.inner_text(".c2pa-title") == evil  # shown as text
    assert "<script>alert('sw')</script>" in page.inner_text("#meta-h ~ dl")
    page.wait_for_timeout(500)
    assert page.dialogs == []
    assert page.locator("img[src=x]").count() == 0


def test_drop_to_verdict_time_for_an_image(page: Any, server: str) -> None:
    seconds = check(page, server, sample("unsigned.jpg"))
    assert label(page) == "inconclusive"
    assert seconds < 30


@pytest.mark.parametrize("lang", ["en", "ja"])
@pytest.mark.parametrize("width", [1280, 375])
def test_the_given_file_beside_the_signed_one_at_every_width(
    browser: Any, server: str, lang: str, width: int
) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900})
    pg = context.new_page()
    try:
        check(pg, server, sample("tampered.jpg"), lang=lang)
        figures = pg.locator("section.pictures figure")
        assert figures.count() == 2
        for i in range(2):
            box = figures.nth(i).locator("img").bounding_box()
            assert box is not None
            assert box["width"] > 50  # the picture is drawn, not a broken image
            assert pg.evaluate(
                "(img) => img.naturalWidth > 0", figures.nth(i).locator("img").element_handle()
            )
        captions = pg.inner_text("section.pictures")
        assert ("提出されたファイル" if lang == "ja" else "The file you gave") in captions
        overflow = pg.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1
        if lang == "ja":
            font = pg.evaluate("getComputedStyle(document.body).fontFamily")
            assert "Hiragino Sans" in font or "Noto Sans JP" in font
            assert pg.inner_text("#verdict-h") == "署名後に改変されています"
    finally:
        context.close()


@pytest.mark.parametrize("lang", ["en", "ja"])
@pytest.mark.parametrize("width", [1280, 375])
def test_a_video_shows_its_frames_and_a_folded_table(
    browser: Any, server: str, lang: str, width: int
) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        check(page, server, sample("signed_video.mp4"), lang=lang)
        assert page.locator("ol.frames img").count() >= 2
        table = page.locator("details.frames-table table")
        assert not table.is_visible()  # folded until asked for
        page.click("details.frames-table summary")
        assert table.is_visible()
        assert page.locator("figure.chart text.tick").count() == 3
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1
    finally:
        context.close()


@pytest.mark.parametrize("lang", ["en", "ja"])
@pytest.mark.parametrize("width", [1280, 375])
def test_the_printable_report_opens_and_fits(
    browser: Any, server: str, width: int, lang: str
) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900})
    pg = context.new_page()
    try:
        check(pg, server, sample("composite_ai_ingredient.jpg"), lang=lang)
        assert pg.locator("a[download$='.jsonld']").count() == 1  # the ClaimReview draft
        pg.click(
            "text=" + ("印刷用の1ページのレポート" if lang == "ja" else "Printable one-page report")
        )
        pg.wait_for_selector("article.print")
        headline = (
            "署名者がAI生成と申告しています"
            if lang == "ja"
            else "Declared AI-generated by its signer"
        )
        assert headline in pg.inner_text("article.print h1")
        overflow = pg.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1
        pdf = pg.pdf() if hasattr(pg, "pdf") else b""
        if pdf:  # Chromium: the printed report is one page
            assert (
                pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page\r") <= 1
                or pdf.count(b"/Type /Page") <= 2
            )
    finally:
        context.close()


def poll(pg: Any, script: str, timeout: float = 60) -> Any:
    """Evaluate ``script`` until it is truthy; the page may be refreshing itself meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        value = None
        with contextlib.suppress(Exception):  # the document was replaced by a refresh
            value = pg.evaluate(script)
        if value:
            return value
        assert time.monotonic() < deadline, script
        pg.wait_for_timeout(200)


@pytest.mark.parametrize(("lang", "width"), [("en", 1280), ("ja", 375), ("en", 375), ("ja", 1280)])
def test_a_long_video_shows_progress_and_can_be_cancelled(
    browser: Any, server: str, tmp_path: Path, lang: str, width: int
) -> None:
    from samples.make_samples import write_video

    clip = tmp_path / "long.mp4"
    # 64 s of 720p, a frame a second: 64 frames to analyse at 720p, several seconds even with
    # two frames analysed at once (the former small clip could end before the click landed).
    write_video(clip, frames=64, fps=1.0, size=(1280, 720))
    context = browser.new_context(viewport={"width": width, "height": 900})
    pg = context.new_page()
    try:
        pg.goto(f"{server}/?lang={lang}")
        pg.set_input_files("input[type=file]", str(clip))
        pg.click("button[type=submit]")
        # Measured once the refreshed page has its stylesheet: an unstyled page (the moment
        # between a refresh's HTML and its CSS) is wider than any styled one.
        status = poll(
            pg,
            "() => { const p = document.querySelector('main progress');"
            " return document.readyState === 'complete' && p && p.max > 1 && p.value >= 1 &&"
            " [document.querySelector('main [role=status]').innerText,"
            "  document.documentElement.scrollWidth - window.innerWidth, location.href]; }",
        )
        text, overflow, url = status
        assert "/jobs/" in url  # an address to come back to
        assert ("フレーム" in text) if lang == "ja" else ("frames analysed" in text)
        assert overflow <= 1
        done = "キャンセルしました" if lang == "ja" else "Cancelled"
        deadline = time.monotonic() + 30
        while True:  # a refresh may swallow a click: click until the page says so
            with contextlib.suppress(Exception):
                pg.click("main form button[type=submit]", timeout=2000)
            if poll(pg, f"() => document.body.innerText.includes({done!r}) || 'no'") is True:
                break
            assert time.monotonic() < deadline
    finally:
        context.close()


@pytest.mark.parametrize("lang", ["en", "ja"])
@pytest.mark.parametrize("width", [1280, 375])
def test_a_file_shingan_cannot_read_gets_a_plain_error(
    browser: Any, server: str, tmp_path: Path, lang: str, width: int
) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("not a picture")
    context = browser.new_context(viewport={"width": width, "height": 900})
    pg = context.new_page()
    try:
        pg.goto(f"{server}/?lang={lang}")
        pg.set_input_files("input[type=file]", str(junk))
        pg.click("button[type=submit]")
        pg.wait_for_selector("[role=alert]")
        said = pg.inner_text("[role=alert]")
        assert ("形式ではありません" in said) if lang == "ja" else ("supported image" in said)
    finally:
        context.close()
