"""What those who publish take away from a report: a schema.org ClaimReview draft.

ClaimReview is the markup fact-check search tools read (https://schema.org/ClaimReview). A
report establishes facts about a file, not a rating of a claim, so the draft fills what the
report established (the file's hash, type and size, the verdict's headline and summary, the
evidence) and leaves empty what only the person publishing can write: the claim, the rating,
the author, the article's URL and date (:data:`TO_FINISH`).
"""

from __future__ import annotations

from typing import Any

from service.messages import PAGE_TEXT

#: The draft's fields a person must fill before publishing.
TO_FINISH = (
    "url",
    "claimReviewed",
    "datePublished",
    "author.name",
    "reviewRating.ratingValue",
    "reviewRating.alternateName",
)

_OBJECT = {"image": "ImageObject", "video": "VideoObject", "audio": "AudioObject"}


def headline(verdict: dict[str, Any], lang: str) -> str:
    """The verdict in plain words (the page's banner), by label and deciding rule."""
    text = PAGE_TEXT.get(lang, PAGE_TEXT["en"])
    return (
        text.get(f"headline.{verdict['label']}.{verdict['rule']}")
        or text[f"headline.{verdict['label']}"]
    )


def claim_review(report: dict[str, Any]) -> dict[str, Any]:
    """A ClaimReview JSON-LD draft from a report (in the report's language)."""
    media, verdict = report["media"], report["verdict"]
    lang = report.get("language") or "en"
    appearance: dict[str, Any] = {
        "@type": _OBJECT.get(media["kind"], "MediaObject"),
        "sha256": media["sha256"],
        "encodingFormat": media["mime"],
        "contentSize": f"{media['bytes']} B",
        "contentUrl": "",
    }
    if media.get("width") and media.get("height"):
        appearance["width"] = media["width"]
        appearance["height"] = media["height"]
    if media.get("duration_s"):
        appearance["duration"] = f"PT{media['duration_s']:g}S"
    if media.get("filename"):
        appearance["name"] = media["filename"]
    evidence = [r["detail"] for r in verdict["reasons"] if r["effect"] != "neutral"]
    body = " ".join([f"{headline(verdict, lang)}.", verdict["summary"], *evidence])
    return {
        "@context": "https://schema.org",
        "@type": "ClaimReview",
        "url": "",
        "claimReviewed": "",
        "datePublished": "",
        "inLanguage": lang,
        "author": {"@type": "Organization", "name": "", "url": ""},
        "reviewRating": {
            "@type": "Rating",
            "ratingValue": "",
            "bestRating": "",
            "worstRating": "",
            "alternateName": "",
        },
        "itemReviewed": {"@type": "Claim", "appearance": [appearance]},
        "reviewBody": body,
    }
