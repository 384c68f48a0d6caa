"""Words people read: verdict summaries and reasons in English and Japanese.

The verdict builds :class:`Msg` values (a key and parameters); :func:`render` turns them into text
in the requested language, falling back to English for any key a language lacks. Parameters
may themselves be messages. Values taken from files (titles, signer names, errors) are passed
as parameters, never as templates, and renderers escape them.

Wording rule: say what the evidence shows and who vouches for it ("the file says it was made
with an AI tool, and the signature is from a trusted signer"), never "fake" or "real".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LANGUAGES = ("en", "ja")
DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True)
class Msg:
    key: str
    params: dict[str, Any] = field(default_factory=dict)


def M(key: str, **params: Any) -> Msg:
    return Msg(key, params)


def negotiate(requested: str | None, accept_language: str | None = None) -> str:
    """Pick a supported language from ``?lang=`` or an Accept-Language header."""
    for candidate in (requested, *_accept(accept_language)):
        if candidate:
            base = candidate.strip().lower().split("-")[0]
            if base in LANGUAGES:
                return base
    return DEFAULT_LANGUAGE


def _accept(header: str | None) -> list[str]:
    if not header:
        return []
    weighted = []
    for part in header.split(","):
        lang, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            weight = 0.0
        weighted.append((weight, lang))
    return [lang for weight, lang in sorted(weighted, key=lambda x: -x[0]) if weight > 0]


def render(msg: Msg | str, lang: str = DEFAULT_LANGUAGE) -> str:
    if isinstance(msg, str):
        return msg
    template = CATALOG.get(lang, {}).get(msg.key) or CATALOG["en"][msg.key]
    params = {k: render(v, lang) if isinstance(v, Msg) else v for k, v in msg.params.items()}
    return template.format(**params)


EN: dict[str, str] = {
    "raw": "{text}",
    "join.1": "{p0}",
    "join.2": "{p0}; {p1}",
    "join.3": "{p0}; {p1}; {p2}",
    "join.4": "{p0}; {p1}; {p2}; {p3}",
    "who.quoted": "“{name}”",
    "who.unknown": "an unknown signer",
    "who.unnamed": "an unnamed signer",
    "c2pa.absent": (
        "The file carries no Content Credentials (C2PA). Most files have none, so this says "
        "nothing either way about whether it is genuine."
    ),
    "c2pa.error": "The file's Content Credentials could not be checked: {error}.",
    "c2pa.error.plain": "The file's Content Credentials could not be checked.",
    "c2pa.error.remote": (
        "The file's Content Credentials could not be checked: {error}. The credentials are "
        "stored at {url}."
    ),
    "c2pa.integrity_failure": (
        "The file was changed after it was signed: the Content Credentials no longer match its "
        "contents ({codes})."
    ),
    "c2pa.credential_problem": (
        "The signing certificate of {who} has a problem ({codes}). This lowers trust in who "
        "signed, but is not evidence that the content changed."
    ),
    "c2pa.other_failure": "Other validation failures were reported ({codes}).",
    "c2pa.ingredient_failure": (
        "Some ingredients' own credentials did not validate ({codes}); the signer still vouched "
        "for using them."
    ),
    "c2pa.ai_declared.trusted": (
        "The Content Credentials declare the content was made with an AI tool ({kind}, in "
        "{where}), and the signature is from a trusted signer, {who}."
    ),
    "c2pa.ai_declared.untrusted": (
        "The Content Credentials declare the content was made with an AI tool ({kind}, in "
        "{where}), signed by {who}, who is not on a configured trust list."
    ),
    "c2pa.ai_declared_unverified.tampered": (
        "The Content Credentials declare AI generation ({kind}, in {where}), but the file "
        "changed after signing, so the declaration cannot be relied on."
    ),
    "c2pa.ai_declared_unverified.invalid": (
        "The Content Credentials declare AI generation ({kind}, in {where}), but the manifest "
        "did not validate, so the declaration cannot be relied on."
    ),
    "c2pa.trusted.capture": (
        "Content Credentials signed by a trusted signer, {who}, record a capture by a device and "
        "declare no AI generation."
    ),
    "c2pa.trusted.history": (
        "Content Credentials signed by a trusted signer, {who}, record its history and declare "
        "no AI generation."
    ),
    "c2pa.valid_untrusted": (
        "The Content Credentials are intact and validly signed by {who}, but that signer does "
        "not chain to a configured trust anchor. Anyone can sign with a self-made certificate, "
        "so this alone does not show the file is genuine."
    ),
    "c2pa.invalid_credentials": (
        "The Content Credentials did not validate, though no sign was found that the content "
        "changed after signing."
    ),
    "watermark.detected": (
        "An invisible {label} watermark was decoded: {matched} of {total} bits match (chance "
        "probability {p}{resized}). Stable Diffusion's reference software embeds it in every "
        "image it makes."
    ),
    "watermark.resized": ", after resizing back to {size}",
    "watermark.none": (
        "No known generator watermark was found. This proves nothing: most generators embed "
        "none, and JPEG re-compression or cropping removes the ones that do."
    ),
    "metadata.generator": (
        "The file's metadata names an AI image generator: {parts}. Metadata is easy to strip "
        "and rarely forged."
    ),
    "metadata.part": "{what} (in {field})",
    "metadata.part.model": "{what} (in {field}, model {model})",
    "metadata.iptc": "IPTC digital source type",
    "metadata.camera": (
        "The file's EXIF names a camera ({camera}). Camera metadata is easy to copy or edit, so "
        "it does not show the picture is genuine."
    ),
    "detector.not_applicable": "The {name} detector did not apply: {notes}.",
    "detector.decides": (
        "The {name} detector scored {score}, above its threshold {threshold} (chosen for a {fpr} "
        "false-positive rate on held-out real photographs)."
    ),
    "detector.lead": (
        "The {name} detector scored {score}, above its threshold {threshold}, but that threshold "
        "was chosen for a {fpr} false-positive rate: too many real photographs score as high for "
        "the detector to decide alone. Treat it as a lead for a person to follow."
    ),
    "detector.below": (
        "The {name} detector scored {score}, below its threshold {threshold}. A low score is not "
        "evidence that the image is genuine."
    ),
    "detector.unstable": (
        "The detector's decision did not survive ordinary re-encoding ({failed}). A decision "
        "that flips when the file is re-compressed or resized is not reliable, so it is not used."
    ),
    "summary.detector.ai_generated": (
        "A statistical detector rates this image as likely AI-generated; no provenance signal "
        "confirms it. Detectors make mistakes: treat this as a lead, not proof."
    ),
    "summary.detector.manipulated": (
        "A statistical detector rates this image as likely manipulated; no provenance signal "
        "confirms it. Detectors make mistakes: treat this as a lead, not proof."
    ),
    "summary.watermark": (
        "An invisible watermark that Stable Diffusion software embeds in the images it generates "
        "was found in this file."
    ),
    "summary.metadata": (
        "The file's metadata says it was made with an AI image generator ({name}). Such metadata "
        "is easy to remove but rarely forged."
    ),
    "summary.manipulated.c2pa": (
        "The file was changed after it was signed: its Content Credentials no longer match its "
        "contents."
    ),
    "summary.ai.c2pa.trusted": (
        "The file says it was made with an AI tool, and the signature is from a trusted signer "
        "({who})."
    ),
    "summary.ai.c2pa.untrusted": (
        "The file says it was made with an AI tool; the signature is valid but the signer is not "
        "on a configured trust list."
    ),
    "summary.authentic": (
        "The file's Content Credentials were signed by a trusted signer ({who}) and show no AI "
        "generation and no change after signing."
    ),
    "summary.inconclusive": "We cannot tell whether this file is genuine: {why}.",
    "why.absent": "it carries no Content Credentials and no other signal gave an answer",
    "why.error": "its Content Credentials could not be checked",
    "why.valid": "its Content Credentials are validly signed, but not by a signer on a trust list",
    "why.invalid": "its Content Credentials did not validate",
    "why.other": "no signal gave a clear answer",
    "why.unstable": "a detector's score crossed its threshold, but not after ordinary re-encoding",
    "generator.declared": "declared {type}",
    "generator.unknown": "an AI tool",
    "match.close": (
        "The file matches entry “{entry}” of the known-media bank “{bank}”, recorded as "
        "{label} (perceptual-hash distance {distance} of 256)."
    ),
    "match.near": (
        "The file resembles entry “{entry}” of the known-media bank “{bank}” (recorded as "
        "{label}), but not closely enough to be the same picture (distance {distance} of 256)."
    ),
    "summary.match.authentic": (
        "The file matches an item recorded as authentic in the known-media bank “{bank}” "
        "(“{entry}”)."
    ),
    "summary.match.ai_generated": (
        "The file matches an item recorded as AI-generated in the known-media bank “{bank}” "
        "(“{entry}”)."
    ),
    "summary.match.manipulated": (
        "The file matches an item recorded as manipulated in the known-media bank “{bank}” "
        "(“{entry}”)."
    ),
}

JA: dict[str, str] = {
    "join.2": "{p0}、{p1}",
    "join.3": "{p0}、{p1}、{p2}",
    "join.4": "{p0}、{p1}、{p2}、{p3}",
    "who.unknown": "不明な署名者",
    "who.unnamed": "名前のない署名者",
    "c2pa.absent": (
        "このファイルにはコンテンツクレデンシャル（C2PA）が含まれていません。"
        "多くのファイルには含まれていないため、本物かどうかについては何も示しません。"
    ),
    "c2pa.error": "このファイルのコンテンツクレデンシャルを検証できませんでした: {error}。",
    "c2pa.error.plain": "このファイルのコンテンツクレデンシャルを検証できませんでした。",
    "c2pa.error.remote": (
        "このファイルのコンテンツクレデンシャルを検証できませんでした: {error}。"
        "クレデンシャルは {url} に保存されています。"
    ),
    "c2pa.integrity_failure": (
        "このファイルは署名後に変更されています。"
        "コンテンツクレデンシャルがファイルの内容と一致しません（{codes}）。"
    ),
    "c2pa.credential_problem": (
        "{who} の署名証明書に問題があります（{codes}）。"
        "署名者への信頼は下がりますが、内容が変更された証拠ではありません。"
    ),
    "c2pa.other_failure": "その他の検証エラーが報告されました（{codes}）。",
    "c2pa.ingredient_failure": (
        "一部の素材（イングリディエント）自体のクレデンシャルを検証できませんでした（{codes}）。"
        "ただし署名者はそれらを使ったことを保証しています。"
    ),
    "c2pa.ai_declared.trusted": (
        "コンテンツクレデンシャルは、この内容がAIツールで作られたと宣言しています（{kind}、{where}）。"
        "署名は信頼できる署名者 {who} によるものです。"
    ),
    "c2pa.ai_declared.untrusted": (
        "コンテンツクレデンシャルは、この内容がAIツールで作られたと宣言しています（{kind}、{where}）。"
        "署名者 {who} は設定された信頼リストに含まれていません。"
    ),
    "c2pa.ai_declared_unverified.tampered": (
        "コンテンツクレデンシャルはAI生成を宣言しています（{kind}、{where}）が、"
        "署名後にファイルが変更されているため、この宣言は当てにできません。"
    ),
    "c2pa.ai_declared_unverified.invalid": (
        "コンテンツクレデンシャルはAI生成を宣言しています（{kind}、{where}）が、"
        "マニフェストの検証に失敗したため、この宣言は当てにできません。"
    ),
    "c2pa.trusted.capture": (
        "信頼できる署名者 {who} が署名したコンテンツクレデンシャルは、"
        "機器による撮影を記録しており、AI生成を宣言していません。"
    ),
    "c2pa.trusted.history": (
        "信頼できる署名者 {who} が署名したコンテンツクレデンシャルは、"
        "このファイルの履歴を記録しており、AI生成を宣言していません。"
    ),
    "c2pa.valid_untrusted": (
        "コンテンツクレデンシャルは改ざんされておらず、{who} による有効な署名があります。"
        "ただしこの署名者は設定された信頼アンカーにつながっていません。"
        "自作の証明書で誰でも署名できるため、これだけでは本物であることを示しません。"
    ),
    "c2pa.invalid_credentials": (
        "コンテンツクレデンシャルの検証に失敗しましたが、署名後に内容が変更された形跡は見つかりませんでした。"
    ),
    "watermark.detected": (
        "不可視の {label} 透かしが検出されました: {total} ビット中 {matched} ビットが一致"
        "（偶然に一致する確率 {p}{resized}）。"
        "Stable Diffusion の参照ソフトウェアは、生成するすべての画像にこの透かしを埋め込みます。"
    ),
    "watermark.resized": "、{size} に戻して検出",
    "watermark.none": (
        "既知の生成AIの透かしは見つかりませんでした。これは何も証明しません。"
        "多くの生成AIは透かしを埋め込まず、埋め込まれていてもJPEGの再圧縮や切り抜きで消えるためです。"
    ),
    "metadata.generator": (
        "ファイルのメタデータにAI画像生成ツールが記録されています: {parts}。"
        "メタデータは簡単に削除できますが、偽造されることはまれです。"
    ),
    "metadata.part": "{what}（{field}）",
    "metadata.part.model": "{what}（{field}、モデル {model}）",
    "metadata.iptc": "IPTC デジタルソースタイプ",
    "metadata.camera": (
        "ファイルのEXIFにカメラ（{camera}）が記録されています。"
        "カメラのメタデータは簡単にコピー・編集できるため、写真が本物であることは示しません。"
    ),
    "detector.not_applicable": "検出器 {name} は適用されませんでした: {notes}。",
    "detector.decides": (
        "検出器 {name} のスコアは {score} で、しきい値 {threshold} を上回りました"
        "（学習に使っていない実写真で誤検出率 {fpr} となるよう選んだしきい値です）。"
    ),
    "detector.lead": (
        "検出器 {name} のスコアは {score} で、しきい値 {threshold} を上回りましたが、"
        "このしきい値は誤検出率 {fpr} で選ばれたものです。実写真でも同じくらいのスコアになることが多く、"
        "検出器だけでは判断できません。人が確認するための手がかりとして扱ってください。"
    ),
    "detector.below": (
        "検出器 {name} のスコアは {score} で、しきい値 {threshold} を下回りました。"
        "スコアが低いことは、画像が本物である証拠にはなりません。"
    ),
    "detector.unstable": (
        "検出器の判定は、通常の再エンコード（{failed}）の後には維持されませんでした。"
        "再圧縮や縮小で変わる判定は信頼できないため、使用しません。"
    ),
    "summary.detector.ai_generated": (
        "統計的な検出器は、この画像がAIで生成された可能性が高いと評価していますが、"
        "来歴を示す信号による裏付けはありません。検出器は誤ることがあります。"
        "証拠ではなく手がかりとして扱ってください。"
    ),
    "summary.detector.manipulated": (
        "統計的な検出器は、この画像が加工された可能性が高いと評価していますが、"
        "来歴を示す信号による裏付けはありません。検出器は誤ることがあります。"
        "証拠ではなく手がかりとして扱ってください。"
    ),
    "summary.watermark": (
        "Stable Diffusion のソフトウェアが生成画像に埋め込む不可視の透かしが、このファイルから見つかりました。"
    ),
    "summary.metadata": (
        "ファイルのメタデータには、AI画像生成ツール（{name}）で作られたと記録されています。"
        "このようなメタデータは簡単に削除できますが、偽造されることはまれです。"
    ),
    "summary.manipulated.c2pa": (
        "このファイルは署名後に変更されています。コンテンツクレデンシャルがファイルの内容と一致しません。"
    ),
    "summary.ai.c2pa.trusted": (
        "このファイルはAIツールで作られたと記載しており、署名は信頼できる署名者（{who}）によるものです。"
    ),
    "summary.ai.c2pa.untrusted": (
        "このファイルはAIツールで作られたと記載しています。署名は有効ですが、"
        "署名者は設定された信頼リストに含まれていません。"
    ),
    "summary.authentic": (
        "このファイルのコンテンツクレデンシャルは信頼できる署名者（{who}）によって署名されており、"
        "AI生成も署名後の変更も示していません。"
    ),
    "summary.inconclusive": "このファイルが本物かどうかは判断できません: {why}。",
    "why.absent": "コンテンツクレデンシャルがなく、他の信号からも答えが得られませんでした",
    "why.error": "コンテンツクレデンシャルを検証できませんでした",
    "why.valid": "コンテンツクレデンシャルは有効に署名されていますが、信頼リストにある署名者によるものではありません",
    "why.invalid": "コンテンツクレデンシャルの検証に失敗しました",
    "why.other": "明確な答えを出した信号がありません",
    "why.unstable": "検出器のスコアはしきい値を超えましたが、通常の再エンコードの後には超えませんでした",
    "generator.declared": "{type} と宣言",
    "generator.unknown": "AIツール",
    "match.close": (
        "このファイルは既知メディアのバンク「{bank}」の項目「{entry}」と一致します"
        "（記録: {label}、知覚ハッシュ距離 {distance}/256）。"
    ),
    "match.near": (
        "このファイルは既知メディアのバンク「{bank}」の項目「{entry}」（記録: {label}）に似ていますが、"
        "同じ画像と言えるほど近くはありません（距離 {distance}/256）。"
    ),
    "summary.match.authentic": (
        "このファイルは既知メディアのバンク「{bank}」で本物と記録された項目（「{entry}」）と一致します。"
    ),
    "summary.match.ai_generated": (
        "このファイルは既知メディアのバンク「{bank}」でAI生成と記録された項目（「{entry}」）と一致します。"
    ),
    "summary.match.manipulated": (
        "このファイルは既知メディアのバンク「{bank}」で加工済みと記録された項目（「{entry}」）と一致します。"
    ),
}

CATALOG: dict[str, dict[str, str]] = {"en": EN, "ja": JA}
