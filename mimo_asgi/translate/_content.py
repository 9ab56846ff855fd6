"""Responses content parts -> MiMo chat parts and tool-output strings (pure).

Text parts are never empty. Images and audio go to MiMo in user messages (and images also
after the tool outputs that returned them; audio in a tool output becomes a marker) unless the
model is known to be text-only: then a user's image or audio is a 400 naming the model, and in
a tool output a text marker says what was left out. Readable `input_file` data becomes text, anything else a marker naming the file.
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from .._models import supports_images
from .._seal import ReasoningSealer
from ._mimo import EMPTY_OUTPUT, media_refused, safe_dumps  # safe_dumps: also what _items imports from here
from ._tooldefs import ToolNames
from ._tools import Entry
from .errors import invalid_request

_TEXT_PARTS = {"input_text", "output_text", "text", "summary_text", "reasoning_text"}
_DETAILS = {"low", "high", "auto"}
_BINARY_MIME = ("image/", "audio/", "video/", "application/pdf", "application/zip", "application/octet-stream")


@dataclass(slots=True)
class Ctx:
    """What item translation needs besides the item itself."""

    model: str
    sealer: ReasoningSealer
    names: ToolNames
    warnings: list[str]
    loaded: list[Entry] = field(default_factory=list)  # tools made callable by tool_search_output
    asked: str | None = None  # the model name the client asked for (errors name it)


def _text(s: str) -> dict[str, Any]:
    return {"type": "text", "text": s}


def _image(part: dict[str, Any], param: str, ctx: Ctx, *, allowed: bool, tool_output: bool) -> dict[str, Any]:
    url = part.get("image_url")
    if isinstance(url, dict):  # tolerate the chat shape {"url": ...}
        url = url.get("url")
    if url is not None and not isinstance(url, str):
        raise invalid_request("'image_url' must be a string.", param=f"{param}.image_url")
    if not url:
        file_id = part.get("file_id")
        if isinstance(file_id, str) and file_id:
            return _text(f"[image omitted: file {file_id} cannot be fetched by this gateway]")
        raise invalid_request("An input_image needs an 'image_url'.", param=f"{param}.image_url")
    if not allowed:
        return _text("[image omitted: images are only passed in user messages]")
    if not supports_images(ctx.model):
        if not tool_output:
            raise media_refused("image", ctx.model, ctx.asked, param)
        return _text(f"[image omitted: {ctx.model} does not accept images]")
    image: dict[str, Any] = {"url": url}
    if isinstance(part.get("detail"), str) and part["detail"] in _DETAILS:
        image["detail"] = part["detail"]
    return {"type": "image_url", "image_url": image}


def _audio(part: dict[str, Any], param: str, ctx: Ctx, *, allowed: bool, tool_output: bool) -> dict[str, Any]:
    """`input_audio` (`{data: base64, format: wav|mp3}`): the same part in MiMo's chat shape,
    under the rule images follow."""
    audio = part.get("input_audio")
    if not isinstance(audio, dict) or not isinstance(audio.get("data"), str) or not audio["data"]:
        raise invalid_request("An input_audio part needs 'input_audio.data' (base64 audio).",
                              param=f"{param}.input_audio")
    if not allowed or tool_output:
        return _text("[audio omitted: audio is only passed in user messages]")
    if not supports_images(ctx.model):
        raise media_refused("audio", ctx.model, ctx.asked, param)
    clean = {"data": audio["data"]}
    if isinstance(audio.get("format"), str):
        clean["format"] = audio["format"]
    return {"type": "input_audio", "input_audio": clean}


def _decoded_text(data: str) -> str | None:
    """The text inside `file_data` (data URL or bare base64), or None when it is not text."""
    if data.startswith("data:"):
        header, sep, data = data.partition(",")
        if not sep:
            return None
        mime = header[5:].split(";", 1)[0].strip().lower()
        if mime.startswith(_BINARY_MIME):
            return None
        if ";base64" not in header.lower():
            return urllib.parse.unquote(data)
    try:
        raw = base64.b64decode("".join(data.split()), validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    return None if "\x00" in text or text.startswith("%PDF") else text


def _file(part: dict[str, Any]) -> dict[str, Any]:
    name = next((part[k] for k in ("filename", "file_url", "file_id") if isinstance(part.get(k), str) and part[k]),
                "unnamed file")
    data = part.get("file_data")
    text = _decoded_text(data) if isinstance(data, str) and data else None
    if text is None:
        return _text(f"[file omitted: {name} cannot be read by this model]")
    return _text(f"[file: {name}]\n{text}")


def _part(part: Any, role: str, param: str, ctx: Ctx, *, tool_output: bool = False) -> dict[str, Any] | None:
    if not isinstance(part, dict) or not isinstance(part.get("type"), str):
        raise invalid_request("Each content part must be an object with a string 'type'.", param=param)
    kind = part["type"]
    if kind in _TEXT_PARTS or kind == "refusal":
        key = "refusal" if kind == "refusal" else "text"
        text = part.get(key)
        if not isinstance(text, str):
            raise invalid_request(f"'{key}' must be a string.", param=f"{param}.{key}")
        return _text(text) if text else None  # MiMo rejects empty text parts
    if kind == "input_image":
        return _image(part, param, ctx, allowed=role == "user", tool_output=tool_output)
    if kind == "input_audio":
        return _audio(part, param, ctx, allowed=role == "user", tool_output=tool_output)
    if kind == "input_file":
        return _file(part)
    return _text(f"[{kind} omitted: not supported by this model]")


def chat_parts(content: Any, role: str, param: str, ctx: Ctx) -> list[dict[str, Any]]:
    """Chat parts (`text`, and in user messages `image_url` / `input_audio`) for a message's
    `content`, empty text dropped."""
    if content is None:
        return []
    if isinstance(content, str):
        return [_text(content)] if content else []
    if not isinstance(content, list):
        raise invalid_request("'content' must be a string or an array of content parts.", param=param)
    parts = (_part(p, role, f"{param}[{j}]", ctx) for j, p in enumerate(content))
    return [p for p in parts if p is not None]


def parts_text(parts: list[dict[str, Any]]) -> str:
    """The text parts' text (`image_url` / `input_audio` parts are not text)."""
    return "\n\n".join(p["text"] for p in parts if p["type"] == "text")


def output_text(value: Any, param: str, ctx: Ctx) -> tuple[str, list[dict[str, Any]]]:
    """A tool output as MiMo's string `content`, plus image parts a vision model can see."""
    if isinstance(value, str):
        return value or EMPTY_OUTPUT, []
    if value is None:
        return EMPTY_OUTPUT, []
    if isinstance(value, dict) and isinstance(value.get("content"), str):  # {content, success}
        return value["content"] or EMPTY_OUTPUT, []
    if not isinstance(value, list):
        return safe_dumps(value), []
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    for j, item in enumerate(value):
        if isinstance(item, str):
            texts.append(item)
            continue
        part = _part(item, "user", f"{param}[{j}]", ctx, tool_output=True)
        if part is None:
            continue
        if part["type"] == "image_url":
            images.append(part)
            texts.append("[image: shown in the next message]")
        else:
            texts.append(part["text"])
    return "\n".join(texts) or EMPTY_OUTPUT, images
