"""Metadata reading: the shared fixtures, and files the tests write for every generator format."""

from __future__ import annotations

import csv
import io
import json
import re
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from provenance.metadata import MetadataFinding, decode_user_comment, parse_a1111, read_metadata
from service.signals import Findings
from service.verdict import fuse
from tests.conftest import FIXTURES, SHARED_REASON, sample, shared_path

A1111 = (
    "a red fox in snow, <lora:foo:0.5>\nNegative prompt: blurry, lowres\n"
    "Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1234567, Size: 512x768, "
    'Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Lora hashes: "foo: abc", Version: v1.9.4'
)


def read(data: bytes) -> MetadataFinding:
    with Image.open(io.BytesIO(data)) as im:
        return read_metadata(im)


def png(text: dict[str, str] | None = None, size: tuple[int, int] = (8, 8), **kw: object) -> bytes:
    info = PngInfo()
    for k, v in (text or {}).items():
        info.add_text(k, v)
    buf = io.BytesIO()
    Image.new("RGB", size, (90, 120, 200)).save(buf, format="PNG", pnginfo=info, **kw)
    return buf.getvalue()


def jpeg(
    exif: Image.Exif | None = None, xmp: bytes | None = None, size: tuple[int, int] = (16, 12)
) -> bytes:
    buf = io.BytesIO()
    kw: dict[str, object] = {}
    if exif is not None:
        kw["exif"] = exif
    if xmp is not None:
        kw["xmp"] = xmp
    Image.new("RGB", size, (200, 100, 50)).save(buf, format="JPEG", **kw)
    return buf.getvalue()


def xmp_packet(**fields: str) -> bytes:
    ns = {
        "xmp": "http://ns.adobe.com/xap/1.0/",
        "photoshop": "http://ns.adobe.com/photoshop/1.0/",
        "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
        "dc": "http://purl.org/dc/elements/1.1/",
        "tiff": "http://ns.adobe.com/tiff/1.0/",
    }
    attrs = " ".join(f'xmlns:{p}="{u}"' for p, u in ns.items())
    body = "".join(
        f"<{k.replace('__', ':')}>{v}</{k.replace('__', ':')}>" for k, v in fields.items()
    )
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f'<rdf:Description rdf:about="" {attrs}>{body}</rdf:Description>'
        '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
    ).encode()


# --- parsers ----------------------------------------------------------------------------------


def test_parse_a1111_splits_prompt_and_settings() -> None:
    p = parse_a1111(A1111)
    assert p is not None
    assert p["prompt"] == "a red fox in snow, <lora:foo:0.5>"
    assert p["negative_prompt"] == "blurry, lowres"
    assert (p["Steps"], p["Sampler"], p["Seed"], p["Model"]) == (
        "28",
        "DPM++ 2M Karras",
        "1234567",
        "v1-5-pruned-emaonly",
    )
    assert p["Lora hashes"] == "foo: abc"
    assert parse_a1111("just a caption") is None


@pytest.mark.parametrize("codec", ["utf-16-be", "utf-16-le"])
def test_user_comment_unicode_either_byte_order(codec: str) -> None:
    assert decode_user_comment(b"UNICODE\x00" + A1111.encode(codec)) == A1111
    assert decode_user_comment(b"ASCII\x00\x00\x00hello") == "hello"


# --- generators, written by the tests ---------------------------------------------------------


def test_a1111_png_and_forge_variant() -> None:
    m = read(png({"parameters": A1111.replace("v1.9.4", "f0.0.17v1.8.0rc")}))
    assert m.generator == "automatic1111"
    sig = m.signatures[0]
    assert sig.field == "PNG text 'parameters'"
    assert (sig.model, sig.sampler, sig.seed, sig.steps) == (
        "v1-5-pruned-emaonly",
        "DPM++ 2M Karras",
        "1234567",
        "28",
    )
    assert sig.variant is not None
    assert sig.variant.startswith("forge")
    assert m.ai_declared


def test_a1111_jpeg_user_comment_little_endian() -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\x00" + A1111.encode("utf-16-le")
    m = read(jpeg(exif))
    assert m.generator == "automatic1111"
    assert m.signatures[0].field == "EXIF UserComment (0x9286)"
    assert m.signatures[0].prompt == "a red fox in snow, <lora:foo:0.5>"


def test_fooocus_and_swarmui_json_parameters() -> None:
    fooocus = json.dumps(
        {
            "prompt": "castle",
            "base_model": "juggernautXL",
            "seed": 5,
            "version": "Fooocus v2.5.3",
            "fooocus_scheme": "fooocus",
        }
    )
    m = read(png({"parameters": fooocus}))
    assert (m.generator, m.signatures[0].model) == ("fooocus", "juggernautXL")
    swarm = json.dumps({"sui_image_params": {"prompt": "a cat", "model": "flux1-dev", "seed": 9}})
    m = read(png({"parameters": swarm}))
    assert (m.generator, m.signatures[0].model, m.signatures[0].seed) == (
        "swarmui",
        "flux1-dev",
        "9",
    )


def test_comfyui_graph_follows_positive_link() -> None:
    graph = {
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "seed": 42,
                "steps": 20,
                "sampler_name": "euler",
                "positive": ["6", 0],
                "negative": ["7", 0],
                "model": ["4", 0],
            },
        },
        "4": {
            "class_type": "CheckpointLoaderSimple",
            "inputs": {"ckpt_name": "flux1-schnell.safetensors"},
        },
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse at dusk"}},
        "7": {
            "class_type": "CLIPTextEncode",
            "inputs": {"text": "a much much longer negative prompt text"},
        },
    }
    m = read(png({"prompt": json.dumps(graph)}))
    sig = m.signatures[0]
    assert (m.generator, sig.field) == ("comfyui", "PNG text 'prompt'")
    assert (sig.model, sig.seed, sig.prompt) == (
        "flux1-schnell.safetensors",
        "42",
        "a lighthouse at dusk",
    )
    assert sig.negative_prompt == "a much much longer negative prompt text"


@pytest.mark.parametrize(
    ("key", "value", "model"),
    [
        (
            "invokeai_metadata",
            json.dumps({"positive_prompt": "x", "model": {"name": "sdxl-base"}, "seed": 1}),
            "sdxl-base",
        ),
        ("invokeai_graph", json.dumps({"nodes": {}}), None),
        (
            "sd-metadata",
            json.dumps(
                {
                    "model_weights": "stable-diffusion-1.4",
                    "image": {
                        "prompt": [{"prompt": "owl", "weight": 1}],
                        "seed": 3,
                        "sampler": "k_lms",
                    },
                }
            ),
            "stable-diffusion-1.4",
        ),
        ("Dream", '"an owl on a branch" -s 50 -S 1234 -W 512 -H 512 -C 7.5 -A k_lms', None),
    ],
)
def test_invokeai_historical_keys(key: str, value: str, model: str | None) -> None:
    m = read(png({key: value}))
    assert m.generator == "invokeai"
    assert m.signatures[0].field == f"PNG text '{key}'"
    assert m.signatures[0].model == model
    if key == "Dream":
        assert (m.signatures[0].prompt, m.signatures[0].seed) == ("an owl on a branch", "1234")


def test_midjourney_job_id_and_software_field() -> None:
    m = read(
        png({"Description": "a fox --ar 2:3 --v 6 Job ID: 0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"})
    )
    assert m.generator == "midjourney"
    m = read(png({"Software": "Midjourney"}))
    assert m.generator == "midjourney"


def test_firefly_via_xmp_and_source_type() -> None:
    packet = xmp_packet(
        xmp__CreatorTool="Adobe Firefly",
        Iptc4xmpExt__DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia",
    )
    m = read(jpeg(xmp=packet))
    assert m.generator == "adobe-firefly"
    assert m.digital_source_type == "trainedAlgorithmicMedia"
    assert {s.name for s in m.signatures} == {"adobe-firefly", "iptc-digital-source-type"}


def test_google_iptc_declaration_with_credit() -> None:
    packet = xmp_packet(
        photoshop__Credit="Made with Google AI",
        Iptc4xmpExt__DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia",
    )
    m = read(jpeg(xmp=packet))
    assert m.ai_declared
    assert m.generator == "google-ai"
    assert m.digital_source_type == "compositeWithTrainedAlgorithmicMedia"


def test_non_ai_source_type_is_not_a_declaration() -> None:
    packet = xmp_packet(
        Iptc4xmpExt__DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"
    )
    m = read(jpeg(xmp=packet))
    assert m.digital_source_type == "digitalCapture"
    assert not m.ai_declared


@pytest.mark.parametrize("declared", ["algorithmicMedia", "compositeSynthetic"])
def test_algorithmic_media_is_declared_but_not_ai(declared: str) -> None:
    """IPTC: algorithmicMedia is made without sampled training data; compositeSynthetic has
    synthetic elements of either kind. Context for people, never generative AI."""
    packet = xmp_packet(
        Iptc4xmpExt__DigitalSourceType=f"http://cv.iptc.org/newscodes/digitalsourcetype/{declared}"
    )
    m = read(jpeg(xmp=packet))
    assert m.digital_source_type == declared
    assert not m.ai_declared
    assert m.generator is None
    v = fuse(Findings.of(metadata=m))
    assert v.label == "inconclusive"
    [reason] = [r for r in v.reasons if r.finding == "metadata.declared_algorithmic"]
    assert reason.effect == "neutral"
    assert "not generative AI" in reason.detail or "not say they are AI" in reason.detail


def test_ordinary_words_in_captions_are_not_generators() -> None:
    packet = xmp_packet(
        dc__description="Planes on the runway; Gemini constellation; imagen del día"
    )
    m = read(jpeg(xmp=packet))
    assert not m.ai_declared
    assert m.generator is None


def test_text_chunk_after_image_data_is_read() -> None:
    data = png()
    chunk = b"tEXt" + b"parameters\x00" + A1111.encode("latin-1")
    tail = struct.pack(">I", len(chunk) - 4) + chunk + struct.pack(">I", zlib.crc32(chunk))
    iend = data.rfind(b"IEND") - 4
    m = read(data[:iend] + tail + data[iend:])
    assert m.generator == "automatic1111"


def test_prompt_is_bounded() -> None:
    m = read(png({"parameters": "x" * 50_000 + "\nSteps: 1, Seed: 2"}))
    assert m.signatures[0].prompt is not None
    assert len(m.signatures[0].prompt) <= 1000
    assert all(len(v) <= 300 for v in m.fields.values())


def test_hostile_xmp_entities_are_refused() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><a>&lol3;</a></x:xmpmeta>'
    )
    m = read(jpeg(xmp=bomb))
    assert m.error is None
    assert m.fields.get("XMP:error") == "unparsable XMP packet"


def test_camera_with_editor_and_time_inconsistency() -> None:
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "Canon EOS R5"
    exif[0x0131] = "Adobe Photoshop 25.0 (Macintosh)"
    exif[0x0132] = "2024:01:01 10:00:00"  # modified
    ifd = exif.get_ifd(0x8769)
    ifd[0x9003] = "2024:03:01 09:00:00"  # captured after modification
    ifd[0xA434] = "RF24-105mm F4 L IS USM"
    ifd[0xA002] = 8192
    ifd[0xA003] = 5464
    m = read(jpeg(exif))
    assert m.camera is not None
    assert m.camera.display == "Canon EOS R5"
    assert m.camera.lens == "RF24-105mm F4 L IS USM"
    assert m.editors == ("Adobe Photoshop 25.0 (Macintosh)",)
    text = " ".join(m.inconsistencies)
    assert "last saved by an editor" in text
    assert "later than the modification time" in text
    assert "8192x5464" in text
    assert not m.ai_declared


def test_image_without_metadata() -> None:
    m = read(png())
    assert (m.generator, m.camera, m.software, m.ai_declared) == (None, None, (), False)


# --- the shared fixtures ----------------------------------------------------------------------

METADATA = FIXTURES / "metadata"


def _rows() -> list[dict[str, str]]:
    manifest = METADATA / "MANIFEST.tsv"
    if not manifest.is_file():
        return []
    with manifest.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


ROWS = _rows()

# What each MANIFEST row names, as Shingan should report it: (kind, expected text).
EXPECTED = {
    "md_a1111_jpg.jpg": ("generator", "automatic1111"),
    "md_a1111_png.png": ("generator", "automatic1111"),
    "md_cfy_sdxlturbo.png": ("generator", "sdxl-turbo"),
    "md_comfy_img2img.png": ("generator", "comfyui"),
    "md_dalle2_cherries.png": ("generator", "dall-e-2"),
    "md_exif_canon_40d.jpg": ("camera", "Canon EOS 40D"),
    "md_exif_nikon_d70.jpg": ("camera", "Nikon D70"),
    "md_exif_sony.jpg": ("camera", "Sony DSC-RX1R"),
    "md_invokeai_imeta.png": ("generator", "invokeai"),
    "md_iptc_agency.jpg": ("camera", "Nikon D2X"),
    "md_novelai.png": ("generator", "novelai"),
    "md_png_exif_gps.png": ("camera", "Canon PowerShot S40"),
    "md_sw_gimp_usercomment.jpg": ("software", "GIMP 2.4.5"),
    "md_xmp_photoshop_bluesquare.jpg": ("software", "Adobe Photoshop CS2"),
}


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


@pytest.mark.shared
@pytest.mark.skipif(not METADATA.is_dir(), reason=SHARED_REASON)
def test_every_fixture_row_is_expected() -> None:
    assert {r["file"] for r in ROWS} == set(EXPECTED)


@pytest.mark.shared
@pytest.mark.parametrize("row", ROWS, ids=[r["file"] for r in ROWS])
def test_fixture_names_its_generator_or_camera(row: dict[str, str]) -> None:
    kind, expected = EXPECTED[row["file"]]
    # The expectation comes from the MANIFEST's own wording.
    assert _norm(expected.split()[-1]) in _norm(row["generator_or_source"] + row["notes"])
    with Image.open(METADATA / row["file"]) as im:
        m = read_metadata(im)
    if kind == "generator":
        assert m.ai_declared
        sig = m.signatures[0]
        said = _norm(" ".join(x or "" for x in (sig.name, sig.model, sig.variant)))
        assert _norm(expected) in said, (sig, expected)
    elif kind == "camera":
        assert m.camera is not None
        said = _norm(f"{m.camera.make} {m.camera.model}")
        for part in expected.split():
            assert _norm(part) in said
        assert not m.ai_declared
    else:
        assert any(_norm(expected) in _norm(s) for s in m.software)
        assert not m.ai_declared


# --- hostile XMP (issue 11) -------------------------------------------------------------------

_TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def _nested_xmp(n: int) -> bytes:
    body = "<rdf:Description><a:k><rdf:li>" * n + "</rdf:li></a:k></rdf:Description>" * n
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:a="urn:a">'
        f"{body}</rdf:RDF></x:xmpmeta>"
    ).encode()


def test_nested_xmp_costs_linear_time() -> None:
    # n=1000 in a JPEG APP1 took 27 s when every Description searched its subtree again.
    import time

    started = time.perf_counter()
    m = read(jpeg(xmp=_nested_xmp(1000)))
    assert time.perf_counter() - started < 3.0
    assert m.fields["XMP:error"].startswith("XMP packet too large or deeply nested")


def test_wide_xmp_in_png_is_read_whole_and_fast() -> None:
    import time

    items = "".join(f"<rdf:li>item {i}</rdf:li>" for i in range(20_000))
    bags = f"<rdf:Description><a:k><rdf:Bag>{items}</rdf:Bag></a:k></rdf:Description>" * 4
    packet = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:a="urn:a" '
        'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/">'
        f'{bags}<rdf:Description Iptc4xmpExt:DigitalSourceType="{_TRAINED}"/>'
        "</rdf:RDF></x:xmpmeta>"
    )
    info = PngInfo()
    info.add_itxt("XML:com.adobe.xmp", packet)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG", pnginfo=info)
    started = time.perf_counter()
    m = read(buf.getvalue())
    assert time.perf_counter() - started < 3.0
    assert m.digital_source_type == "trainedAlgorithmicMedia"
    assert "XMP:error" not in m.fields


@pytest.mark.parametrize("bad", ["\x01", "&#1;", "&#x1F;", "\x0b"])
def test_an_invalid_xml_character_does_not_hide_the_declaration(bad: str) -> None:
    packet = xmp_packet(
        dc__description=f"caption {bad} here",
        Iptc4xmpExt__DigitalSourceType=_TRAINED,
    )
    m = read(jpeg(xmp=packet))
    assert m.ai_declared
    assert m.digital_source_type == "trainedAlgorithmicMedia"
    assert "XMP:error" not in m.fields


def test_malformed_xmp_is_read_by_pattern() -> None:
    packet = (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description '
        f'Iptc4xmpExt:DigitalSourceType="{_TRAINED}"><xmp:CreatorTool>Adobe Firefly'
        "</xmp:CreatorTool><unclosed></rdf:RDF></x:xmpmeta>"
    ).encode()
    m = read(jpeg(xmp=packet))
    assert m.fields["XMP:error"] == "unparsable XMP packet; some fields were read by pattern"
    assert m.digital_source_type == "trainedAlgorithmicMedia"
    assert m.generator == "adobe-firefly"


# --- ComfyUI in EXIF: SaveAnimatedWEBP (issue 14) ---------------------------------------------

# An API-format graph as ComfyUI's default workflow makes it.
COMFY_GRAPH = {
    "3": {
        "class_type": "KSampler",
        "inputs": {
            "seed": 156680208700286,
            "steps": 20,
            "sampler_name": "euler",
            "model": ["4", 0],
            "positive": ["6", 0],
            "negative": ["7", 0],
        },
    },
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5.safetensors"}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a bottle with a galaxy inside"}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark"}},
}
COMFY_WORKFLOW = {"last_node_id": 9, "nodes": [{"id": 3, "type": "KSampler"}], "links": []}


def comfy_webp(
    extra: dict[str, object] | None = None, *, frames: int = 3, lossless: bool = True
) -> bytes:
    """As comfyanonymous/ComfyUI comfy_api/latest/_ui.py ImageSaveHelper writes it for
    SaveAnimatedWEBP: the graph in Model (0x0110) as ``prompt:<json>``, each extra_pnginfo
    entry from Make (0x010F) down as ``<key>:<json>``."""
    images = [Image.new("RGB", (24, 16), (40 * i, 90, 200)) for i in range(frames)]
    exif = images[0].getexif()
    exif[0x0110] = f"prompt:{json.dumps(COMFY_GRAPH)}"
    tag = 0x010F
    for key, value in (extra if extra is not None else {"workflow": COMFY_WORKFLOW}).items():
        exif[tag] = f"{key}:{json.dumps(value)}"
        tag -= 1
    buf = io.BytesIO()
    images[0].save(
        buf,
        format="WEBP",
        save_all=True,
        duration=166,
        append_images=images[1:],
        exif=exif,
        lossless=lossless,
        quality=80,
        method=4,
    )
    return buf.getvalue()


@pytest.mark.parametrize("lossless", [True, False])
def test_comfyui_animated_webp_exif(lossless: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import WebPImagePlugin

    decoded: list[int] = []
    original = WebPImagePlugin.WebPImageFile.load

    def counting_load(self: WebPImagePlugin.WebPImageFile) -> object:
        decoded.append(self.tell())
        return original(self)

    monkeypatch.setattr(WebPImagePlugin.WebPImageFile, "load", counting_load)
    with Image.open(io.BytesIO(comfy_webp(lossless=lossless))) as im:
        assert getattr(im, "n_frames", 1) == 3
        m = read_metadata(im)
        assert decoded == []  # no frame was decoded to read it
    sig = m.signatures[0]
    assert (m.generator, sig.field) == (
        "comfyui",
        "EXIF Model (0x0110) 'prompt:' and EXIF Make (0x010F) 'workflow:'",
    )
    assert (sig.model, sig.sampler, sig.seed, sig.steps) == (
        "v1-5.safetensors",
        "euler",
        "156680208700286",
        "20",
    )
    assert (sig.prompt, sig.negative_prompt) == ("a bottle with a galaxy inside", "text, watermark")
    # The JSON is not a camera make and model, and names no vendor.
    assert m.camera is None
    assert [s.name for s in m.signatures] == ["comfyui"]
    assert not m.inconsistencies
    assert {"ComfyUI:prompt", "ComfyUI:workflow"} <= set(m.fields)
    assert "EXIF:Make" not in m.fields
    assert "EXIF:Model" not in m.fields


def test_comfyui_webp_more_extra_keys_and_workflow_only() -> None:
    m = read(comfy_webp({"workflow": COMFY_WORKFLOW, "note": {"a": 1}}, frames=1))
    assert m.generator == "comfyui"
    assert "EXIF:ImageDescription" not in m.fields  # 0x010E held the second extra key
    assert m.fields["ComfyUI:note"] == '{"a": 1}'
    # Without the graph, the UI workflow alone still names ComfyUI (nothing more to extract).
    exif = Image.Exif()
    exif[0x010F] = "workflow:" + json.dumps(COMFY_WORKFLOW)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="WEBP", exif=exif)
    m = read(buf.getvalue())
    assert (m.generator, m.signatures[0].field) == ("comfyui", "EXIF Make (0x010F) 'workflow:'")
    assert m.signatures[0].model is None


def test_comfyui_exif_capitalised_keys_in_jpeg_and_real_cameras_untouched() -> None:
    # Custom save nodes copy the scheme with "Prompt:"/"Workflow:" (and into JPEG).
    exif = Image.Exif()
    exif[0x010F] = "Prompt:" + json.dumps(COMFY_GRAPH)
    exif[0x010E] = "Workflow:" + json.dumps(COMFY_WORKFLOW)
    m = read(jpeg(exif))
    assert m.generator == "comfyui"
    assert m.signatures[0].field == (
        "EXIF Make (0x010F) 'Prompt:' and EXIF ImageDescription (0x010E) 'Workflow:'"
    )
    assert m.signatures[0].seed == "156680208700286"
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Canon", "Canon EOS R5: {mark II}"
    m = read(jpeg(exif))
    assert m.camera is not None
    assert m.camera.model == "Canon EOS R5: {mark II}"
    assert not m.ai_declared


# --- stealth PNG info: parameters in the pixels' lowest bits (issue 14) -----------------------


def reference_stealth(image: Image.Image, text: str, mode: str, compressed: bool) -> Image.Image:
    """ashen-sensored/sd_webui_stealth_pnginfo scripts/stealth_pnginfo.py ``prepare_data`` and
    ``add_data``, kept line for line (Forge's modules/stealth_infotext.py is the same), so that
    the reader is checked against the writers' own layout rather than against itself."""
    import gzip

    signature = (
        f"stealth_{'png' if mode == 'alpha' else 'rgb'}{'info' if not compressed else 'comp'}"
    )
    binary_signature = "".join(format(byte, "08b") for byte in signature.encode("utf-8"))
    param = text.encode("utf-8") if not compressed else gzip.compress(bytes(text, "utf-8"))
    binary_param = "".join(format(byte, "08b") for byte in param)
    binary_data = binary_signature + format(len(binary_param), "032b") + binary_param
    if mode == "alpha":
        image.putalpha(255)
    width, height = image.size
    pixels = image.load()
    assert pixels is not None
    index = 0
    for x in range(width):
        for y in range(height):
            if index >= len(binary_data):
                return image
            values = pixels[x, y]
            assert isinstance(values, tuple)
            if mode == "alpha":
                r, g, b, a = values
                a = (a & ~1) | int(binary_data[index])
                index += 1
                pixels[x, y] = (r, g, b, a)
            else:
                r, g, b = values
                r = (r & ~1) | int(binary_data[index])
                if index + 1 < len(binary_data):
                    g = (g & ~1) | int(binary_data[index + 1])
                if index + 2 < len(binary_data):
                    b = (b & ~1) | int(binary_data[index + 2])
                index += 3
                pixels[x, y] = (r, g, b)
    return image


def noisy(width: int, height: int, seed: int = 1) -> Image.Image:
    import numpy as np

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    return buf.getvalue()


def read_decoded(data: bytes) -> MetadataFinding:
    """As analyze() calls it: on an image whose pixels are decoded."""
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return read_metadata(im)


@pytest.mark.parametrize(
    ("mode", "compressed", "field_name"),
    [
        ("alpha", False, "PNG alpha-channel LSB (stealth pnginfo)"),
        ("alpha", True, "PNG alpha-channel LSB (stealth pngcomp)"),
        ("rgb", False, "PNG RGB LSB (stealth rgbinfo)"),
        ("rgb", True, "PNG RGB LSB (stealth rgbcomp)"),
    ],
)
@pytest.mark.parametrize("size", [(96, 200), (60, 50), (1200, 3)])
def test_stealth_pnginfo_every_mode(
    mode: str, compressed: bool, field_name: str, size: tuple[int, int]
) -> None:
    from provenance.stealth import write_stealth

    forge = A1111.replace("Version: v1.9.4", "Version: f2.0.1v1.10.1-previous-313")
    base = noisy(*size)
    image = reference_stealth(
        base.convert("RGBA") if mode == "alpha" else base.copy(), forge, mode, compressed
    )
    import numpy as np

    # The test helper writes exactly what the extension writes.
    ours = write_stealth(base, forge, channel=mode, compressed=compressed)  # type: ignore[arg-type]
    assert np.array_equal(np.asarray(ours), np.asarray(image))
    m = read_decoded(encoded(image))
    sig = m.signatures[0]
    assert (m.generator, sig.field) == ("automatic1111", field_name)
    assert (sig.variant, sig.seed, sig.model, sig.sampler) == (
        "forge f2.0.1v1.10.1-previous-313",
        "1234567",
        "v1-5-pruned-emaonly",
        "DPM++ 2M Karras",
    )
    assert sig.prompt == "a red fox in snow, <lora:foo:0.5>"
    assert m.fields[
        f"Stealth:stealth_{'png' if mode == 'alpha' else 'rgb'}{'comp' if compressed else 'info'}"
    ]


def test_stealth_in_lossless_webp_and_beside_png_text() -> None:
    from provenance.stealth import write_stealth

    m = read_decoded(encoded(write_stealth(noisy(64, 64), A1111), "WEBP"))
    assert (m.generator, m.signatures[0].field) == (
        "automatic1111",
        "WEBP alpha-channel LSB (stealth pngcomp)",
    )
    # A1111 writes both: one signature, the text chunk's (found first).
    info = PngInfo()
    info.add_text("parameters", A1111)
    buf = io.BytesIO()
    write_stealth(noisy(64, 64), A1111).save(buf, format="PNG", pnginfo=info)
    m = read_decoded(buf.getvalue())
    assert [(s.name, s.field) for s in m.signatures] == [("automatic1111", "PNG text 'parameters'")]


def test_stealth_novelai_and_comfyui_payloads() -> None:
    import gzip

    import numpy as np

    # NovelAI/novelai-image-metadata nai_meta_writer.py: gzip of the JSON of its PNG text keys
    # (Title dropped); LSBInjector.finalize sets every alpha to 0xFF, then 0xFE | bit.
    comment = {"prompt": "1girl, cherry blossoms", "steps": 28, "seed": 3071, "sampler": "k_euler"}
    data = {
        "Description": "1girl, cherry blossoms",
        "Software": "NovelAI",
        "Source": "NovelAI Diffusion V4 4F49EC75",
        "Comment": json.dumps(comment),
    }
    payload = gzip.compress(json.dumps(data).encode())
    stream = b"stealth_pngcomp" + struct.pack(">I", len(payload) * 8) + payload
    pixels = np.array(noisy(64, 128).convert("RGBA"))
    alpha = pixels[..., -1].T.reshape(-1).copy()
    bits = np.unpackbits(np.frombuffer(stream, dtype=np.uint8))
    alpha[:] = 0xFF
    alpha[: len(bits)] = 0xFE | bits
    pixels[..., -1] = alpha.reshape(64, 128).T
    m = read_decoded(encoded(Image.fromarray(pixels)))
    sig = m.signatures[0]
    assert (m.generator, sig.field) == ("novelai", "PNG alpha-channel LSB (stealth pngcomp)")
    assert (sig.model, sig.seed, sig.sampler, sig.prompt) == (
        "NovelAI Diffusion V4 4F49EC75",
        "3071",
        "k_euler",
        "1girl, cherry blossoms",
    )

    # catboxanon/comfyui_stealth_pnginfo stealth.py: a JSON object of the PNG text keys, each
    # value JSON text, written uncompressed in the alpha channel by the A1111 code.
    text = json.dumps({"prompt": json.dumps(COMFY_GRAPH), "workflow": json.dumps(COMFY_WORKFLOW)})
    m = read_decoded(
        encoded(reference_stealth(noisy(128, 64).convert("RGBA"), text, "alpha", False))
    )
    sig = m.signatures[0]
    assert (m.generator, sig.field) == ("comfyui", "PNG alpha-channel LSB (stealth pnginfo)")
    assert (sig.model, sig.seed) == ("v1-5.safetensors", "156680208700286")


def test_stealth_is_bounded_and_never_raises() -> None:
    import numpy as np

    from provenance.stealth import MAX_PAYLOAD

    def forged(declared_bits: int, body: bytes, signature: bytes = b"stealth_pngcomp") -> bytes:
        stream = signature + struct.pack(">I", declared_bits) + body
        bits = np.unpackbits(np.frombuffer(stream, dtype=np.uint8))
        pixels = np.array(noisy(64, 64).convert("RGBA"))
        column = pixels.transpose(1, 0, 2).reshape(-1, 4).copy()
        column[: len(bits), 3] = (column[: len(bits), 3] & 0xFE) | bits
        return encoded(Image.fromarray(column.reshape(64, 64, 4).transpose(1, 0, 2).copy()))

    # A length far beyond the pixels, garbage instead of gzip, an empty payload: an error field,
    # no signature, no exception.
    m = read_decoded(forged(0xFFFFFFFF, b"\x1f\x8b" + bytes(range(200))))
    assert m.fields["Stealth:error"] == "the stealth data is not valid gzip"
    assert not m.ai_declared
    m = read_decoded(forged(0, b""))
    assert m.fields["Stealth:error"] == "the stealth data declares no payload"
    # A gzip bomb: the text stops at the bound.
    import gzip

    bomb = gzip.compress(b"A" * (MAX_PAYLOAD * 3), compresslevel=9)
    side = int((len(bomb) * 8 + 200) ** 0.5) + 1
    stream = b"stealth_pngcomp" + struct.pack(">I", len(bomb) * 8) + bomb
    bits = np.unpackbits(np.frombuffer(stream, dtype=np.uint8))
    pixels = np.array(noisy(side, side).convert("RGBA"))
    column = pixels.transpose(1, 0, 2).reshape(-1, 4).copy()
    column[: len(bits), 3] = (column[: len(bits), 3] & 0xFE) | bits
    image = Image.fromarray(column.reshape(side, side, 4).transpose(1, 0, 2).copy())
    m = read_decoded(encoded(image))
    assert m.fields["Stealth:error"].startswith("stealth data larger than the bound")
    # Random low bits (any ordinary image) hold no signature.
    for seed in range(20):
        assert (
            "Stealth:error" not in read_decoded(encoded(noisy(40, 40, seed).convert("RGBA"))).fields
        )


def test_stealth_costs_one_column_without_a_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    from provenance import stealth

    crops: list[tuple[int, int, int, int]] = []
    original = Image.Image.crop

    def crop(self: Image.Image, box: tuple[int, int, int, int] | None = None) -> Image.Image:
        assert box is not None
        crops.append(box)
        return original(self, box)

    monkeypatch.setattr(Image.Image, "crop", crop)
    with Image.open(io.BytesIO(encoded(noisy(4000, 300).convert("RGBA")))) as im:
        assert stealth.read_stealth(im) is None  # not decoded: not read
        im.load()
        assert stealth.read_stealth(im) is None
    assert crops == [(0, 0, 1, 300)]  # the first column (152 pixels) only


# --- MP4/MOV container metadata (issue 14) ----------------------------------------------------


def box(kind: bytes, *children: bytes) -> bytes:
    body = b"".join(children)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full(kind: bytes, *children: bytes, version: int = 0) -> bytes:
    return box(kind, struct.pack(">I", version << 24), *children)


def data_item(kind: bytes, value: str) -> bytes:
    """An ilst item: the item box holding a ``data`` box (type 1: UTF-8, locale 0)."""
    return box(kind, box(b"data", struct.pack(">II", 1, 0), value.encode()))


def itunes_meta(*items: bytes) -> bytes:
    """``udta/meta`` as FFmpeg writes it for MP4 (libavformat/movenc.c mov_write_meta_tag)."""
    hdlr = full(b"hdlr", b"\0\0\0\0mdirappl" + bytes(9))
    return box(b"udta", full(b"meta", hdlr, box(b"ilst", *items)))


def mdta_meta(entries: dict[str, str], *, full_box: bool = True) -> bytes:
    """A keys+ilst ``meta`` box: FFmpeg's with ``-movflags use_metadata_tags`` (a full box, in
    udta), or Apple's (``full_box=False``, in moov)."""
    hdlr = full(b"hdlr", b"\0\0\0\0mdta" + bytes(13))
    keys = full(
        b"keys",
        struct.pack(">I", len(entries)),
        *(struct.pack(">I4s", 8 + len(k.encode()), b"mdta") + k.encode() for k in entries),
    )
    items = (data_item(struct.pack(">I", i + 1), v) for i, v in enumerate(entries.values()))
    children = (hdlr, keys, box(b"ilst", *items))
    return full(b"meta", *children) if full_box else box(b"meta", *children)


def qt_text(kind: bytes, value: str) -> bytes:
    """A QuickTime udta text atom: 16-bit length, 16-bit language, the text."""
    raw = value.encode()
    return box(kind, struct.pack(">HH", len(raw), 0x15C7), raw)


def with_moov_children(*children: bytes) -> bytes:
    """The project's sample clip with ``children`` in place of its moov/udta. Its moov follows
    mdat, so the chunk offsets stay right and the frames still decode; its C2PA box becomes a
    'free' box of the same size (the edit would otherwise read as tampering)."""
    data = sample("signed_video.mp4").read_bytes()
    out, pos, seen_mdat = b"", 0, False
    while pos < len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos : pos + size]
        if kind == b"uuid":
            body = struct.pack(">I4s", size, b"free") + bytes(size - 8)
        elif kind == b"mdat":
            seen_mdat = True
        elif kind == b"moov":
            assert seen_mdat
            inner, p = b"", 8
            while p < size:
                n, k = struct.unpack(">I4s", body[p : p + 8])
                if k != b"udta":
                    inner += body[p : p + n]
                p += n
            body = box(b"moov", inner, *children)
        out += body
        pos += size
    return out


def mov(*moov_children: bytes, top: tuple[bytes, ...] = ()) -> bytes:
    """A QuickTime file with no media: enough for the metadata reader."""
    return (
        box(b"ftyp", b"qt  \0\0\0\0qt  ")
        + box(b"mdat", bytes(64))
        + box(b"moov", full(b"mvhd", bytes(96)), *moov_children)
        + b"".join(top)
    )


def read_video(data: bytes) -> MetadataFinding:
    from provenance.metadata import read_video_metadata

    return read_video_metadata(io.BytesIO(data))


def vhs_comment() -> str:
    """Kosinkadink/ComfyUI-VideoHelperSuite videohelpersuite/nodes.py: ``video_metadata`` has
    the prompt as JSON text and each extra_pnginfo entry as it is; ``ffmpeg_process`` writes
    ``json.dumps(video_metadata)`` as FFmpeg's ``comment``."""
    return json.dumps({"prompt": json.dumps(COMFY_GRAPH), "workflow": COMFY_WORKFLOW})


def test_videohelpersuite_comment_in_mp4_decides_the_verdict(tmp_path: Path) -> None:
    from service.pipeline import analyze

    path = tmp_path / "AnimateDiff_00001.mp4"
    path.write_bytes(
        with_moov_children(
            itunes_meta(data_item(b"\xa9too", "Lavf61.7.100"), data_item(b"\xa9cmt", vhs_comment()))
        )
    )
    r = analyze(path).to_dict()
    meta = r["provenance"]["metadata"]
    sig = meta["signatures"][0]
    assert (meta["generator"], sig["field"]) == ("comfyui", "MP4 moov/udta/meta/ilst '©cmt'")
    assert (sig["model"], sig["seed"], sig["prompt"]) == (
        "v1-5.safetensors",
        "156680208700286",
        "a bottle with a galaxy inside",
    )
    assert meta["software"] == ["Lavf61.7.100"]
    assert (r["verdict"]["label"], r["verdict"]["confidence"]) == ("ai_generated", "medium")
    assert r["verdict"]["basis"] == ["metadata"]
    assert r["media"]["frames_analyzed"] == 2  # the frames still decode


def test_comfyui_savevideo_mdta_keys() -> None:
    # comfy_api/latest/_input_impl/video_types.py: container metadata (prompt, workflow) with
    # movflags use_metadata_tags, so FFmpeg writes them as mdta keys, beside its "encoder".
    meta = mdta_meta(
        {
            "encoder": "Lavf61.7.100",
            "prompt": json.dumps(COMFY_GRAPH),
            "workflow": json.dumps(COMFY_WORKFLOW),
        }
    )
    m = read_video(box(b"ftyp", b"isom\0\0\2\0isomiso2avc1mp41") + box(b"moov", box(b"udta", meta)))
    sig = m.signatures[0]
    assert m.generator == "comfyui"
    assert sig.field == (
        "MP4 moov/udta/meta/ilst key 'prompt' and MP4 moov/udta/meta/ilst key 'workflow'"
    )
    assert (sig.sampler, sig.negative_prompt) == ("euler", "text, watermark")
    assert m.software == ("Lavf61.7.100",)


def test_apple_keys_camera_software_and_location() -> None:
    from service.signals.metadata import Metadata

    apple = mdta_meta(
        {
            "com.apple.quicktime.make": "Apple",
            "com.apple.quicktime.model": "iPhone 15 Pro",
            "com.apple.quicktime.software": "17.5.1",
            "com.apple.quicktime.creationdate": "2024-06-01T10:00:00+0200",
            "com.apple.quicktime.location.ISO6709": "+48.8584+002.2945+035.000/",
        },
        full_box=False,
    )
    m = read_video(mov(apple))
    assert m.camera is not None
    assert (m.camera.make, m.camera.model, m.camera.capture_time) == (
        "Apple",
        "iPhone 15 Pro",
        "2024-06-01T10:00:00+0200",
    )
    assert (m.software, m.has_gps, m.ai_declared, m.error) == (("17.5.1",), True, False, None)
    reasons = [c for c in Metadata().claims(m) if c.finding == "metadata.camera"]
    assert reasons[0].detail.startswith(
        "The video's metadata names a camera or device (Apple iPhone 15 Pro)."
    )


def test_quicktime_udta_atoms_and_xmp_declarations() -> None:
    xmp = xmp_packet(xmp__CreatorTool="Adobe Firefly", Iptc4xmpExt__DigitalSourceType=_TRAINED)
    m = read_video(
        mov(
            box(
                b"udta",
                qt_text(b"\xa9swr", "Adobe Premiere Pro 2025.0"),
                qt_text(b"\xa9mak", "Canon"),
                qt_text(b"\xa9mod", "Canon EOS R5"),
                box(b"XMP_", xmp),
            )
        )
    )
    assert m.digital_source_type == "trainedAlgorithmicMedia"
    assert [s.name for s in m.signatures] == ["adobe-firefly", "iptc-digital-source-type"]
    assert m.signatures[0].field == "XMP 'xmp:CreatorTool'"
    assert m.camera is not None
    assert m.camera.display == "Canon EOS R5"
    assert m.software == ("Adobe Firefly", "Adobe Premiere Pro 2025.0")
    assert any(n.startswith("Camera metadata (Canon EOS R5) appears") for n in m.inconsistencies)
    # The XMP uuid box at the top level (Adobe's place for it), and a vendor in the encoder.
    uuid = box(b"uuid", bytes.fromhex("BE7ACFCB97A942E89C71999491E3AFAC"), xmp)
    m = read_video(mov(itunes_meta(data_item(b"\xa9too", "Runway Gen-3 Alpha")), top=(uuid,)))
    assert m.digital_source_type == "trainedAlgorithmicMedia"
    assert {s.name for s in m.signatures} == {"runway", "adobe-firefly", "iptc-digital-source-type"}
    runway = next(s for s in m.signatures if s.name == "runway")
    assert runway.field == "MOV moov/udta/meta/ilst '©too'"


def test_a1111_parameters_in_a_video_comment() -> None:
    m = read_video(mov(box(b"udta", qt_text(b"\xa9cmt", A1111))))
    assert (m.generator, m.signatures[0].field) == ("automatic1111", "MOV moov/udta '©cmt'")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\0\0\0\x10ftyp",  # cut inside a box
        box(b"ftyp", b"isom") + struct.pack(">I4s", 0x7FFFFFFF, b"moov"),  # beyond the file
        box(b"ftyp", b"isom") + struct.pack(">I4sQ", 1, b"moov", 2**63),  # 64-bit, beyond
        box(b"ftyp", b"isom") + struct.pack(">I4s", 3, b"moov") + bytes(16),  # too small
        box(b"moov", box(b"udta", struct.pack(">I4s", 99, b"meta"))),  # child beyond parent
        box(b"moov", box(b"udta", full(b"meta", box(b"keys", b"\xff" * 12)))),
        box(b"moov", box(b"udta", full(b"meta", box(b"ilst", box(b"\0\0\0\x09", b"x"))))),
        box(b"moov", box(b"udta", box(b"\xa9cmt", b"\xff\xff\0\0abc"))),
        box(b"moov", box(b"udta", box(b"titl", b"\0"))),
        box(b"moov", box(b"trak", box(b"mdia", box(b"hdlr", b"\x00" * 3)))),
        box(b"uuid", bytes.fromhex("BE7ACFCB97A942E89C71999491E3AFAC"), b"<x:xmpmeta"),
        bytes(range(256)) * 40,
    ],
)
def test_malformed_containers_never_raise(data: bytes) -> None:
    m = read_video(data)
    assert not m.ai_declared
    json.dumps(dict(m.fields))


def test_container_bounds() -> None:
    import time

    # Deep nesting: only fixed paths are descended, so it costs one box.
    nested = b"x"
    for _ in range(2000):
        nested = box(b"moov", nested)
    started = time.perf_counter()
    m = read_video(nested)
    # Many boxes: the walk stops at its bound and says so.
    many = box(b"moov", box(b"udta", *(qt_text(b"\xa9xyz", "1") for _ in range(30_000))))
    m = read_video(many)
    assert "too many boxes" in m.fields["QuickTime:error"]
    # A metadata box larger than the read bound is skipped, not read.
    big = struct.pack(">I4s", 8 + 20_000_000, b"udta") + bytes(20_000_000)
    m = read_video(box(b"ftyp", b"isom") + struct.pack(">I4s", 8 + len(big), b"moov") + big)
    assert m.fields["QuickTime:error"] == "a metadata box of 20000000 bytes was not read"
    assert time.perf_counter() - started < 10


def test_video_metadata_from_a_path_and_an_unreadable_one(tmp_path: Path) -> None:
    from provenance.metadata import read_video_metadata

    m = read_video_metadata(sample("signed_video.mp4"))
    assert m.software[0].startswith("Lavf")
    assert read_video_metadata(tmp_path / "missing.mp4").error


@pytest.mark.shared
def test_real_videos_camera_software_and_history() -> None:
    """contentauth/c2pa-rs test files (MIT OR Apache-2.0; see ../shared MANIFEST.tsv): a MOV
    from macOS with Apple's mdta keys, an MP4 from Adobe Premiere Rush with XMP."""
    from provenance.metadata import read_video_metadata

    m = read_video_metadata(shared_path("c2pa", "rs", "c.mov"))
    assert m.camera is not None
    assert (m.camera.make, m.camera.model) == ("Apple", "Mac15,9")
    assert m.software == ("macOS 14.6.1 (23G93)",)
    assert m.fields["QuickTime:HandlerName"] == "Core Media Video"
    m = read_video_metadata(shared_path("c2pa", "rs", "video1.mp4"))
    assert m.software == ("Adobe Premiere Rush (Macintosh)",)
    assert m.fields["QuickTime:HandlerName"] == "Mainconcept Video Media Handler"
    assert not m.ai_declared
    m = read_video_metadata(shared_path("c2pa", "adversarial", "nested_moov_1000.mp4"))
    assert (m.error, m.ai_declared) == (None, False)


def test_analyze_reads_stealth_png_and_comfyui_animated_webp(tmp_path: Path) -> None:
    """The whole path: analyze() decodes the image, then reads its metadata from it."""
    from service.pipeline import analyze

    stealth = tmp_path / "00012-1234567.png"
    stealth.write_bytes(
        encoded(reference_stealth(noisy(320, 240).convert("RGBA"), A1111, "alpha", True))
    )
    webp = tmp_path / "ComfyUI_00001_.webp"
    webp.write_bytes(comfy_webp(frames=4))
    for path, generator, where in (
        (stealth, "automatic1111", "PNG alpha-channel LSB (stealth pngcomp)"),
        (webp, "comfyui", "EXIF Model (0x0110) 'prompt:' and EXIF Make (0x010F) 'workflow:'"),
    ):
        r = analyze(path).to_dict()
        meta = r["provenance"]["metadata"]
        assert (meta["generator"], meta["signatures"][0]["field"]) == (generator, where)
        assert (r["verdict"]["label"], r["verdict"]["confidence"]) == ("ai_generated", "medium")
        assert r["verdict"]["basis"] == ["metadata"]


@pytest.mark.parametrize("frames", [3, 1])
@pytest.mark.parametrize("decoded", [False, True])
def test_comfyui_animated_png_comf_chunks(frames: int, decoded: bool, tmp_path: Path) -> None:
    """SaveAnimatedPNG (comfy_api/latest/_ui.py): private 'comf' chunks after the image data,
    ``key NUL json`` for the prompt and each extra_pnginfo entry."""
    info = PngInfo()
    for key, value in (("prompt", COMFY_GRAPH), ("workflow", COMFY_WORKFLOW)):
        info.add(
            b"comf",
            key.encode("latin-1") + b"\0" + json.dumps(value).encode("latin-1"),
            after_idat=True,
        )
    images = [Image.new("RGB", (16, 16), (60 * i, 90, 200)) for i in range(frames)]
    path = tmp_path / "ComfyUI_00001_.png"
    images[0].save(path, save_all=True, append_images=images[1:], duration=100, pnginfo=info)
    with Image.open(path) as im:
        if decoded:
            im.load()
        m = read_metadata(im)
        assert im.tell() == 0
        im.seek(getattr(im, "n_frames", 1) - 1)  # the animation still plays after the walk
        im.load()
    sig = m.signatures[0]
    assert (m.generator, sig.field) == (
        "comfyui",
        "PNG 'comf' chunk 'prompt' and PNG 'comf' chunk 'workflow'",
    )
    assert (sig.model, sig.seed) == ("v1-5.safetensors", "156680208700286")
