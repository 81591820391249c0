"""Stock footage: scenes shown with photos and videos from Pexels and Pixabay.

- `PexelsClips` and `PixabayClips` are clip generators, `PexelsImages` and `PixabayImages`
  image generators: each searches the library for the scene's search terms
  (`avgen.Scene.search_terms`, else terms extracted offline from its title and narration)
  in turn, at most three searches, in the preset's orientation; takes the best result the
  video does not show yet (orientation, length against the shot, size against the
  frame); downloads the smallest file at least as large as the frame (else the largest),
  checks that it decodes, and credits it: every asset carries an `avgen.Source` (author,
  page, licence, the term that found it, the runner-up) that the run writes to the
  manifest and to ``final_output/credits.txt``. A scene longer than a shot
  (`avgen.VideoRequest.max_shot`) shows several of their files in turn.
- Keys come from ``PEXELS_API_KEY`` and ``PIXABAY_API_KEY`` (or ``api_key=``); an agent
  without one refuses the request in ``check``, before anything is made.
- Searches and downloads are kept in an `avgen.agents.AssetCache` (folder
  ``<avgen cache>/stock``): a re-run asks the service nothing. Searches are reused for
  24 hours, as Pixabay asks.
- Answers are untrusted: files are downloaded only over ``https`` from the hosts the
  service names its files on (or from a ``base_url`` you set, the only place plain
  ``http`` is allowed), the key goes only to the service's own address, at most 5
  redirects are followed, and each search or download has a per-read ``timeout``, an
  overall ``deadline`` and a size cap (``max_bytes``). A result naming no file that may be
  downloaded, or an answer with fields of the wrong type, sends the scene to the next tier
  with the reason.
- A rate limit (429) is waited out until ``X-Ratelimit-Reset`` (or ``Retry-After``), up to
  60 s; outages are retried, then a circuit breaker opens so later scenes fall back at
  once (see `STOCK_POLICY`). A scene the library has nothing for falls to the next tier
  (a still, then the procedural card).
- `stock_agents` is the family ``avgen make --agents stock`` uses.
"""

from __future__ import annotations

__docformat__ = "google"

import os
from collections.abc import Mapping
from typing import Any

from avgen.agents._assets.cache import AssetCache
from avgen.agents._protocols import AgentSet
from avgen.agents.stock._common import STOCK_POLICY, default_cache_dir
from avgen.agents.stock._kinds import StockClips, StockImages
from avgen.agents.stock._pexels import PexelsClips, PexelsImages
from avgen.agents.stock._pixabay import PixabayClips, PixabayImages
from avgen.errors import UsageError

__all__ = ["STOCK_POLICY", "PexelsClips", "PexelsImages", "PixabayClips", "PixabayImages",
           "stock_agents"]


def stock_agents(**options: Any) -> AgentSet:
    """The stock family: local script writer, Piper narrator, ffmpeg composer, and stock
    clips and photos for the pictures.

    Clips and photos come from Pexels when ``PEXELS_API_KEY`` is set, else from Pixabay
    when ``PIXABAY_API_KEY`` is; with neither, the Pexels agents are used and refuse the
    request in ``check`` (naming the variable to set).

    Args:
        **options: ``pexels_key``, ``pixabay_key`` (instead of the environment),
            ``cache`` (an `avgen.agents.AssetCache`; ``None`` or ``False``: no cache;
            default: one in ``<avgen cache>/stock``), ``pexels_url``, ``pixabay_url`` (the
            services' addresses), ``env`` (where keys are read); the rest go to
            `avgen.agents.local.PiperNarrator` (``voice``, ``sentence_pause``,
            ``length_scale``).

    Raises:
        UsageError: ``cache`` is not an `AssetCache`, ``None`` or ``False``.
    """
    from avgen.agents.local import LocalScriptWriter, PiperNarrator
    from avgen.media._composer import FFmpegComposer

    env: Mapping[str, str] = options.pop("env", None) or os.environ
    pexels_key = options.pop("pexels_key", None) or env.get("PEXELS_API_KEY") or None
    pixabay_key = options.pop("pixabay_key", None) or env.get("PIXABAY_API_KEY") or None
    pexels_url, pixabay_url = options.pop("pexels_url", None), options.pop("pixabay_url", None)
    cache = options.pop("cache", ...)
    if cache is ...:
        cache = AssetCache(default_cache_dir(env))
    elif cache is False:
        cache = None
    if cache is not None and not isinstance(cache, AssetCache):
        raise UsageError("cache", f"must be an AssetCache, None or False, not {cache!r}")
    clips: StockClips
    images: StockImages
    if pexels_key or not pixabay_key:
        clips = PexelsClips(api_key=pexels_key, base_url=pexels_url, cache=cache, env=env)
        images = PexelsImages(api_key=pexels_key, base_url=pexels_url, cache=cache, env=env)
    else:
        clips = PixabayClips(api_key=pixabay_key, base_url=pixabay_url, cache=cache, env=env)
        images = PixabayImages(api_key=pixabay_key, base_url=pixabay_url, cache=cache,
                               env=env)
    return AgentSet(script_writer=LocalScriptWriter(), narrator=PiperNarrator(**options),
                    composer=FFmpegComposer(), image_generator=images, clip_generator=clips)
