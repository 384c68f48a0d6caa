"""Rendering shared by the pages: their text in each language, CSRF tokens, the report page and
error pages. Imports nothing of the blueprints, so any of them (and the error handlers) can use it.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
from typing import Any

from flask import abort, render_template, request, session

from service.messages import LANGUAGES, negotiate

UI_TEXT: dict[str, dict[str, str]] = {
    "en": {
        "title": "Shingan — what can be established about a file",
        "lead": (
            "Drop an image or a video, or choose one. Shingan checks its Content Credentials, "
            "metadata, watermarks and detectors, and explains what they show."
        ),
        "choose": "File to check",
        "submit": "Check the file",
        "busy": "Analysing… videos can take a minute.",
        "privacy": "The file is analysed and deleted; nothing is kept.",
        "verdict": "Verdict",
        "confidence": "confidence",
        "basis": "decided by",
        "reasons": "Reasons",
        "c2pa": "Content Credentials (C2PA)",
        "metadata": "Metadata",
        "watermarks": "Invisible watermarks",
        "detectors": "Detectors",
        "forensics": "Forensic maps (for people; never scored)",
        "timeline": "Video frames",
        "chart": "Detector scores over time (lines; dashed: thresholds) and faces (bars)",
        "matches": "Known media",
        "file": "File",
        "warnings": "Warnings",
        "export": "Export",
        "download_json": "Download the JSON report",
        "print": "Use your browser's Print to keep a printable copy.",
        "another": "Check another file",
        "signer": "Signer",
        "issuer": "Issued by",
        "signed_at": "Signed at",
        "timestamp": "Time-stamp",
        "ai": "AI declaration",
        "actions": "Actions",
        "ingredients": "Ingredients",
        "none": "none",
        "generator": "Generator",
        "prompt": "Prompt",
        "camera": "Camera",
        "software": "Software",
        "score": "score",
        "detector_score": "detector score",
        "threshold": "threshold",
        "card": "model card",
        "error_level": "Error level",
        "noise": "Noise residual",
        "versions": "Versions",
        "analysed": "Analysed",
        "choose_first": "Choose a file first.",
        "nav_check": "Check a file",
        "nav_batch": "Batch",
        "nav_banks": "Known-media banks",
        "signed_in_as": "Signed in as",
        "signout": "Sign out",
        "signin_title": "Sign in with an API key",
        "signin_lead": (
            "This server needs an API key. Ask its administrator for one "
            "(they make keys with 'shingan keys create')."
        ),
        "key": "API key",
        "signin": "Sign in",
        "bad_key": "That key is unknown or has been revoked.",
        "batch_title": "Check many files",
        "batch_lead": (
            "Choose many images and videos, or zip archives of them (up to {n} files). They are "
            "analysed in the background: this page shows the progress, and the results can be "
            "downloaded as CSV or JSON Lines."
        ),
        "batch_choose": "Files or zip archives",
        "batch_submit": "Start the batch",
        "batch_busy": "Uploading…",
        "batch_privacy": "Files are deleted once analysed; the reports are kept.",
        "batch": "Batch",
        "status": "Status",
        "progress": "Progress",
        "status_queued": "waiting",
        "status_running": "analysing",
        "status_done": "done",
        "status_error": "error",
        "refreshing": "This page refreshes itself every few seconds until the batch is done.",
        "download_csv": "Download the results (CSV)",
        "download_jsonl": "Download the results (JSON Lines)",
        "result": "Result",
        "report": "Report",
        "more_items": "Only the first {n} items are listed; the downloads hold them all.",
        "another_batch": "Start another batch",
        "banks_lead": (
            "Every check looks up these banks of known items. A match near enough decides the "
            "verdict (rule 4) and is shown with its distance. Banks can be exported as CSV and "
            "imported elsewhere."
        ),
        "no_banks": "No banks yet.",
        "bank_name": "Name",
        "bank_label": "Items are",
        "entries": "Entries",
        "note": "Note",
        "source": "Source",
        "new_bank": "New bank",
        "create_bank": "Create the bank",
        "add_to_bank": "Add files to a bank",
        "bank": "Bank",
        "add_files": "Add the files",
        "export_csv": "Export CSV",
        "shared": "shared",
        "bank_created": "Bank {bank} created.",
        "added": "{n} entries added to {bank}.",
        "label_authentic": "known authentic originals",
        "label_ai_generated": "known AI-generated",
        "label_manipulated": "known fakes or manipulated",
        "language": "日本語",
    },
    "ja": {
        "title": "真贋 — ファイルについて確かめられること",
        "lead": (
            "画像または動画をドロップするか選択してください。コンテンツクレデンシャル、メタデータ、"
            "透かし、検出器を調べ、それぞれが示すことを説明します。"
        ),
        "choose": "確認するファイル",
        "submit": "ファイルを確認",
        "busy": "解析中です… 動画は1分ほどかかることがあります。",
        "privacy": "ファイルは解析後に削除され、保存されません。",
        "verdict": "判定",
        "confidence": "確信度",
        "basis": "判定の根拠",
        "reasons": "理由",
        "c2pa": "コンテンツクレデンシャル（C2PA）",
        "metadata": "メタデータ",
        "watermarks": "不可視の透かし",
        "detectors": "検出器",
        "forensics": "フォレンジック画像（人が見るためのもの。判定には使いません）",
        "timeline": "動画のフレーム",
        "chart": "時間ごとの検出器スコア（線、破線はしきい値）と顔の数（棒）",
        "matches": "既知のメディア",
        "file": "ファイル",
        "warnings": "注意",
        "export": "書き出し",
        "download_json": "JSONレポートをダウンロード",
        "print": "ブラウザの印刷機能で印刷用の控えを保存できます。",
        "another": "別のファイルを確認",
        "signer": "署名者",
        "issuer": "発行者",
        "signed_at": "署名日時",
        "timestamp": "タイムスタンプ",
        "ai": "AIの宣言",
        "actions": "操作",
        "ingredients": "素材",
        "none": "なし",
        "generator": "生成ツール",
        "prompt": "プロンプト",
        "camera": "カメラ",
        "software": "ソフトウェア",
        "score": "スコア",
        "detector_score": "検出器スコア",
        "threshold": "しきい値",
        "card": "モデルカード",
        "error_level": "エラーレベル",
        "noise": "ノイズ残差",
        "versions": "バージョン",
        "analysed": "解析日時",
        "choose_first": "先にファイルを選択してください。",
        "nav_check": "ファイルを確認",
        "nav_batch": "一括確認",
        "nav_banks": "既知メディアのバンク",
        "signed_in_as": "サインイン中",
        "signout": "サインアウト",
        "signin_title": "APIキーでサインイン",
        "signin_lead": (
            "このサーバーを使うにはAPIキーが必要です。管理者に発行を依頼してください"
            "（管理者は「shingan keys create」でキーを作成します）。"
        ),
        "key": "APIキー",
        "signin": "サインイン",
        "bad_key": "このキーは無効か、取り消されています。",
        "batch_title": "多数のファイルを一括確認",
        "batch_lead": (
            "画像や動画、またはそれらのZIPアーカイブを選択してください（最大{n}ファイル）。"
            "バックグラウンドで解析され、このページに進捗が表示されます。"
            "結果はCSVまたはJSON Linesでダウンロードできます。"
        ),
        "batch_choose": "ファイルまたはZIPアーカイブ",
        "batch_submit": "一括確認を開始",
        "batch_busy": "アップロード中…",
        "batch_privacy": "ファイルは解析後に削除されます。レポートは保存されます。",
        "batch": "バッチ",
        "status": "状態",
        "progress": "進捗",
        "status_queued": "待機中",
        "status_running": "解析中",
        "status_done": "完了",
        "status_error": "エラー",
        "refreshing": "完了するまで、このページは数秒ごとに自動で更新されます。",
        "download_csv": "結果をダウンロード（CSV）",
        "download_jsonl": "結果をダウンロード（JSON Lines）",
        "result": "結果",
        "report": "レポート",
        "more_items": "最初の{n}件のみ表示しています。ダウンロードにはすべて含まれます。",
        "another_batch": "別の一括確認を開始",
        "banks_lead": (
            "すべての確認で、これらの既知メディアのバンクを照合します。十分に近い一致があれば"
            "判定を決め（ルール4）、距離とともに表示します。バンクはCSVで書き出し、"
            "他の組織で読み込むことができます。"
        ),
        "no_banks": "バンクはまだありません。",
        "bank_name": "名前",
        "bank_label": "収録内容",
        "entries": "件数",
        "note": "メモ",
        "source": "出典",
        "new_bank": "新しいバンク",
        "create_bank": "バンクを作成",
        "add_to_bank": "バンクにファイルを追加",
        "bank": "バンク",
        "add_files": "ファイルを追加",
        "export_csv": "CSVを書き出す",
        "shared": "共有",
        "bank_created": "バンク {bank} を作成しました。",
        "added": "{bank} に {n} 件を追加しました。",
        "label_authentic": "既知の本物（オリジナル）",
        "label_ai_generated": "既知のAI生成",
        "label_manipulated": "既知の偽物・改変",
        "language": "English",
    },
}


def lang() -> str:
    return negotiate(
        request.args.get("lang") or request.form.get("lang"), request.headers.get("Accept-Language")
    )


def csrf_token() -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def check_csrf() -> None:
    sent = request.form.get("csrf", "")
    expected = session.get("csrf")
    if not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
        abort(400, description="the form expired or came from another site; reload the page")


def render_report(data: dict[str, Any], code: str) -> str:
    """The report page for a report dict (fresh, or kept in the store)."""
    raw = json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8")
    json_href = "data:application/json;base64," + base64.b64encode(raw).decode("ascii")
    return render_template(
        "report.html",
        t=UI_TEXT[code],
        lang=code,
        other=other(code),
        r=data,
        json_href=json_href,
        json_name=f"shingan-{data['media']['sha256'][:12]}.json",
        chart=timeline_chart(data),
        csrf=csrf_token(),
    )


CHART_W, CHART_H, PAD = 600.0, 140.0, 20.0


def timeline_chart(report: dict[str, Any]) -> dict[str, Any] | None:
    """Coordinates for an inline SVG chart of frame scores (lines) and faces (bars)."""
    timeline = report.get("timeline") or []
    if len(timeline) < 1:
        return None
    end = max(float(report["media"].get("duration_s") or 0), float(timeline[-1]["time_s"]), 1e-6)

    def x(t: float) -> float:
        return round(PAD + (CHART_W - 2 * PAD) * t / end, 1)

    def y(score: float) -> float:
        return round(CHART_H - PAD - (CHART_H - 2 * PAD) * score, 1)

    # Detectors that scored no frame (a face detector on a faceless clip) draw nothing.
    names = sorted({n for e in timeline for n, v in e["scores"].items() if v is not None})
    series = []
    for n in names:
        pts = [
            (x(e["time_s"]), y(e["scores"][n])) for e in timeline if e["scores"].get(n) is not None
        ]
        series.append({"name": n, "points": " ".join(f"{a},{b}" for a, b in pts), "dots": pts})
    thresholds = [
        {"name": d["name"], "y": y(d["threshold"])}
        for d in report.get("detectors", [])
        if d.get("threshold") is not None and d["name"] in names
    ]
    most = max([e["faces"] or 0 for e in timeline] + [1])
    faces = [
        {"x": x(e["time_s"]) - 2, "h": round((CHART_H - 2 * PAD) * (e["faces"] or 0) / most / 3, 1)}
        for e in timeline
        if e.get("faces")
    ]
    return {
        "w": CHART_W,
        "h": CHART_H,
        "pad": PAD,
        "base": CHART_H - PAD,
        "series": series,
        "thresholds": thresholds,
        "faces": faces,
        "end": round(end, 1),
    }


def other(code: str) -> str:
    return next(c for c in LANGUAGES if c != code)


def html_error(status: int, message: str) -> tuple[str, int]:
    return error_page(lang(), status, message)


def error_page(code: str, status: int, message: str) -> tuple[str, int]:
    page = render_template(
        "error.html", t=UI_TEXT[code], lang=code, other=other(code), message=message
    )
    return page, status
