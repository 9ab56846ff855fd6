"""What we know about MiMo model ids (pure): capabilities decided on the upstream model."""

from __future__ import annotations

# Models MiMo serves text-only: a request with an image gets 404 "No endpoints found that support
# image input". A model not listed here may take images and audio: MiMo decides, not a list
# that ages (new MiMo models have been multimodal).
_TEXT_ONLY = frozenset({"mimo-v2-flash", "mimo-v2-pro", "mimo-v2.5-pro", "mimo-v2.5-pro-ultraspeed"})
_THINKING_OFF_BY_DEFAULT = frozenset({"mimo-v2-flash"})
# With thinking on, MiMo forces temperature 1.0 / top_p 0.95 for these.
_FIXED_SAMPLING_WHEN_THINKING = frozenset({"mimo-v2.5-pro", "mimo-v2.5", "mimo-v2-pro", "mimo-v2-omni"})
DEFAULT_MODEL = "mimo-v2.5-pro"
# Chat models MiMo has served; used to keep metric labels bounded.
KNOWN_MODELS = frozenset({"mimo-v2-flash", "mimo-v2-pro", "mimo-v2-omni", "mimo-v2.5-pro", "mimo-v2.5",
                          "mimo-v2.5-pro-ultraspeed", "mimo-v2.6-pro", "mimo-v2.6-flash"})


def is_mimo_model(name: object) -> bool:
    return isinstance(name, str) and name.strip().lower().startswith("mimo-")


def text_only(model: str) -> bool:
    """Known to take neither images nor audio."""
    return model in _TEXT_ONLY


def supports_images(model: str) -> bool:
    """Not known to be text-only: images (and audio) are sent, and MiMo decides."""
    return not text_only(model)


def thinking_by_default(model: str) -> bool:
    return model not in _THINKING_OFF_BY_DEFAULT


def fixes_sampling_when_thinking(model: str) -> bool:
    return model in _FIXED_SAMPLING_WHEN_THINKING
