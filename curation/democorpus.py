"""A small web-like corpus the demo makes itself: drawn images and captions with hashtags.

    generate_corpus(folder, n_images=3000, seed=0) -> folder / "captions.parquet"

writes
    folder/images/NNNNNN.jpg      64x64 RGB JPEGs, one or two drawn objects each
    folder/captions.parquet       one row per image url, schema:
        url       string        path relative to `folder` ("images/000042.jpg"); the demo
                                prefixes the loopback server's base url
        caption   string        web-style text: words, hashtags, meta tags, noise
        kinds     list<string>  the object kinds drawn (DEMO_KINDS keys), in drawing order
        tags      list<string>  the hashtags written into the caption, without '#'
        tag_forms list<string>  per tag: singular, plural, camel, concat, underscore, meta,
                                context
        status    string        ok | missing (no file: the server answers 404) | corrupt
                                (the file is not an image)

Twelve object kinds, each a WordNet 3.0 noun that names a visible thing (`DEMO_KINDS`:
kind -> WordNet lemma). The hashtags for a kind come in the forms a tag mapper meets on the
web (#tree #trees #Tree, #SailBoat, #coffeecup, #soccer_ball), next to meta tags
(#instagood #tbt), context tags that co-occur but are not drawn (#beach, #kitchen), and
captions with no tag at all. Position, scale, rotation, colour, background and pixel noise
vary, so a small ViT must look at shape, not at one colour. The same seed gives the same
bytes: every random draw comes from one `random.Random(seed)`, in a fixed order.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from curation.layout import staged_dir

IMAGE_SIZE = 64
SUPERSAMPLE = 2  # draw at 128 px and downsample: antialiased edges without a slow renderer

# kind -> WordNet lemma the kind's tags should map to (noun synset, first sense)
DEMO_KINDS: dict[str, str] = {
    "sun": "sun",
    "soccer_ball": "soccer_ball",
    "house": "house",
    "tree": "tree",
    "car": "car",
    "goldfish": "goldfish",
    "sunflower": "sunflower",
    "sailboat": "sailboat",
    "umbrella": "umbrella",
    "coffee_cup": "coffee_cup",
    "alarm_clock": "alarm_clock",
    "starfish": "starfish",
}

# kind -> (form, tag) pairs; a caption picks one. Forms are what the test checks for.
KIND_TAGS: dict[str, tuple[tuple[str, str], ...]] = {
    "sun": (("singular", "sun"), ("camel", "Sun"), ("plural", "suns")),
    "soccer_ball": (
        ("concat", "soccerball"), ("camel", "SoccerBall"), ("plural", "soccerballs"),
        ("underscore", "soccer_ball"),
    ),
    "house": (("singular", "house"), ("plural", "houses"), ("camel", "House")),
    "tree": (("singular", "tree"), ("plural", "trees"), ("camel", "Tree"),
             ("concat", "treesofinstagram")),
    "car": (("singular", "car"), ("plural", "cars"), ("camel", "Car")),
    "goldfish": (("singular", "goldfish"), ("camel", "GoldFish")),
    "sunflower": (("singular", "sunflower"), ("plural", "sunflowers"), ("camel", "SunFlower"),
                  ("concat", "sunflowersofinstagram")),
    "sailboat": (("singular", "sailboat"), ("plural", "sailboats"), ("camel", "SailBoat")),
    "umbrella": (("singular", "umbrella"), ("plural", "umbrellas"), ("camel", "Umbrella")),
    "coffee_cup": (
        ("concat", "coffeecup"), ("camel", "CoffeeCup"), ("plural", "coffeecups"),
        ("underscore", "coffee_cup"),
    ),
    "alarm_clock": (("concat", "alarmclock"), ("camel", "AlarmClock"), ("plural", "alarmclocks")),
    "starfish": (("singular", "starfish"), ("camel", "StarFish")),
}  # fmt: skip

# Tags that say nothing about the pixels: a mapper should filter or fail to map them.
# (#dogsofinstagram is left out on purpose: it rightly maps to dog, which is never drawn.)
META_TAGS = (
    "love", "instagood", "photooftheday", "tbt", "nofilter", "picoftheday", "happy",
    "weekend", "sunsetlovers", "instamood", "instadaily", "2023", "vibes", "followme",
)  # fmt: skip
# Real visual nouns that co-occur with a kind but are not drawn: the label noise of the web.
CONTEXT_TAGS: dict[str, tuple[str, ...]] = {
    "sun": ("sky", "summer"), "soccer_ball": ("stadium",), "house": ("garden",),
    "tree": ("garden", "park"), "car": ("road",), "goldfish": ("aquarium",),
    "sunflower": ("garden",), "sailboat": ("beach", "sea"), "umbrella": ("beach", "rain"),
    "coffee_cup": ("kitchen", "breakfast"), "alarm_clock": ("bedroom",),
    "starfish": ("beach", "sea"),
}  # fmt: skip
WORDS = (
    "what a day", "finally home", "my favourite", "look at this", "so proud of this one",
    "weekend mood", "new post", "can't stop looking at it", "best afternoon", "throwback",
    "caught this today", "no words", "simple things", "out and about", "morning",
)  # fmt: skip
NOISE = (
    "lol", "!!!", ":)", "link in bio", "see example.com/page#top", "shot on my phone", "x",
    "http://example.org/a#b", "😍", "(again)",
)  # fmt: skip

# Web tags are long-tailed: the kind of rank r (DEMO_KINDS order) is drawn with weight
# r ** -0.5, so the head kind is ~3.5x the tail one and the vocabulary's cap has work to do.
KIND_WEIGHTS = tuple((rank + 1) ** -0.5 for rank in range(len(DEMO_KINDS)))
P_TWO_OBJECTS = 0.25
P_NO_TAG = 0.07  # caption without any hashtag: the sample carries no label and is not kept
P_META = 0.6
P_CONTEXT = 0.15
P_NOISE = 0.3
P_MISSING = 0.004  # url that answers 404
P_CORRUPT = 0.003  # url that answers bytes that are not an image

Color = tuple[int, int, int]
Drawer = Callable[[Any, random.Random, int], None]  # (ImageDraw on an RGBA canvas, rng, size)


def _jitter(rng: random.Random, color: Color, amount: int = 30) -> Color:
    return tuple(max(0, min(255, c + rng.randint(-amount, amount))) for c in color)  # type: ignore[return-value]


def _any_color(rng: random.Random) -> Color:
    return (rng.randint(30, 255), rng.randint(30, 255), rng.randint(30, 255))


def _star(cx: float, cy: float, r_out: float, r_in: float, points: int, turn: float) -> list:
    pts = []
    for i in range(points * 2):
        r = r_out if i % 2 == 0 else r_in
        a = turn + math.pi * i / points - math.pi / 2
        pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return pts


# Each drawer fills an s x s transparent canvas, object roughly centred, upright.
def _draw_sun(d: Any, rng: random.Random, s: int) -> None:
    c, r = s / 2, s * rng.uniform(0.2, 0.26)
    color = _jitter(rng, (250, 200, 30))
    n = rng.randint(8, 14)
    for i in range(n):
        a = 2 * math.pi * i / n
        d.line([(c + r * 1.2 * math.cos(a), c + r * 1.2 * math.sin(a)),
                (c + r * 1.85 * math.cos(a), c + r * 1.85 * math.sin(a))],
               fill=color, width=max(2, s // 28))  # fmt: skip
    d.ellipse([c - r, c - r, c + r, c + r], fill=color)


def _draw_soccer_ball(d: Any, rng: random.Random, s: int) -> None:
    c, r = s / 2, s * rng.uniform(0.36, 0.44)
    d.ellipse([c - r, c - r, c + r, c + r], fill=_jitter(rng, (240, 240, 240), 12),
              outline=(20, 20, 20), width=max(1, s // 50))  # fmt: skip
    d.polygon(_star(c, c, r * 0.3, r * 0.3, 5, 0.0)[::2], fill=(15, 15, 15))
    for i in range(5):  # the half-visible patches around the central pentagon
        a = 2 * math.pi * i / 5 - math.pi / 2
        px, py = c + r * 0.78 * math.cos(a), c + r * 0.78 * math.sin(a)
        d.polygon(_star(px, py, r * 0.2, r * 0.2, 5, a)[::2], fill=(15, 15, 15))


def _draw_house(d: Any, rng: random.Random, s: int) -> None:
    w, h = s * rng.uniform(0.5, 0.7), s * rng.uniform(0.32, 0.42)
    x0, y1 = (s - w) / 2, s * 0.88
    y0 = y1 - h
    d.rectangle([x0, y0, x0 + w, y1], fill=_any_color(rng))
    d.polygon([(x0 - w * 0.1, y0), (x0 + w * 1.1, y0), (s / 2, y0 - h * rng.uniform(0.7, 1.0))],
              fill=_jitter(rng, (160, 40, 30), 40))  # fmt: skip
    dw = w * 0.2
    d.rectangle([s / 2 - dw / 2, y1 - h * 0.6, s / 2 + dw / 2, y1], fill=(90, 50, 20))
    for wx in (x0 + w * 0.12, x0 + w * 0.68):
        d.rectangle([wx, y0 + h * 0.2, wx + w * 0.2, y0 + h * 0.45], fill=(170, 220, 250))


def _draw_tree(d: Any, rng: random.Random, s: int) -> None:
    tw = s * rng.uniform(0.07, 0.12)
    d.rectangle([s / 2 - tw / 2, s * 0.55, s / 2 + tw / 2, s * 0.92],
                fill=_jitter(rng, (110, 70, 30)))  # fmt: skip
    green = _jitter(rng, (40, 140, 40), 35)
    if rng.random() < 0.5:  # round crown or conifer
        r = s * rng.uniform(0.22, 0.3)
        d.ellipse([s / 2 - r, s * 0.55 - 1.6 * r, s / 2 + r, s * 0.6], fill=green)
    else:
        for k in range(3):
            y = s * (0.62 - 0.16 * k)
            half = s * (0.3 - 0.06 * k)
            d.polygon([(s / 2 - half, y), (s / 2 + half, y), (s / 2, y - s * 0.25)], fill=green)


def _draw_car(d: Any, rng: random.Random, s: int) -> None:
    color = _any_color(rng)
    y_mid = s * 0.55
    d.rounded_rectangle([s * 0.08, y_mid, s * 0.92, y_mid + s * 0.2], radius=s * 0.05, fill=color)
    d.polygon([(s * 0.25, y_mid), (s * 0.35, y_mid - s * 0.16), (s * 0.65, y_mid - s * 0.16),
               (s * 0.78, y_mid)], fill=color)  # fmt: skip
    d.polygon([(s * 0.32, y_mid), (s * 0.39, y_mid - s * 0.12), (s * 0.62, y_mid - s * 0.12),
               (s * 0.7, y_mid)], fill=(180, 220, 240))  # fmt: skip
    r = s * 0.09
    for wx in (s * 0.27, s * 0.73):
        d.ellipse([wx - r, y_mid + s * 0.2 - r, wx + r, y_mid + s * 0.2 + r], fill=(25, 25, 25))


def _draw_goldfish(d: Any, rng: random.Random, s: int) -> None:
    color = _jitter(rng, (245, 130, 20), 25)
    d.polygon([(s * 0.62, s / 2), (s * 0.9, s * 0.3), (s * 0.9, s * 0.7)], fill=color)
    d.ellipse([s * 0.12, s * 0.33, s * 0.68, s * 0.67], fill=color)
    d.ellipse([s * 0.22, s * 0.42, s * 0.29, s * 0.49], fill=(10, 10, 10))
    d.polygon([(s * 0.35, s * 0.35), (s * 0.5, s * 0.22), (s * 0.52, s * 0.36)], fill=color)


def _draw_sunflower(d: Any, rng: random.Random, s: int) -> None:
    d.line([(s / 2, s / 2), (s / 2, s * 0.98)], fill=(40, 130, 40), width=max(2, s // 20))
    c, r = s / 2, s * rng.uniform(0.26, 0.32)
    yellow = _jitter(rng, (250, 210, 20), 20)
    n = rng.randint(10, 16)
    for i in range(n):
        a = 2 * math.pi * i / n
        px, py = c + r * 0.7 * math.cos(a), c + r * 0.7 * math.sin(a)
        d.ellipse([px - r * 0.35, py - r * 0.35, px + r * 0.35, py + r * 0.35], fill=yellow)
    d.ellipse([c - r * 0.5, c - r * 0.5, c + r * 0.5, c + r * 0.5], fill=(90, 50, 15))


def _draw_sailboat(d: Any, rng: random.Random, s: int) -> None:
    y = s * 0.72
    d.polygon([(s * 0.12, y), (s * 0.88, y), (s * 0.75, y + s * 0.14), (s * 0.25, y + s * 0.14)],
              fill=_jitter(rng, (120, 70, 30), 40))  # fmt: skip
    d.line([(s / 2, y), (s / 2, s * 0.1)], fill=(60, 40, 20), width=max(2, s // 40))
    sail = _jitter(rng, (245, 245, 245), 10) if rng.random() < 0.7 else _any_color(rng)
    d.polygon([(s * 0.53, s * 0.12), (s * 0.53, y - s * 0.04), (s * 0.85, y - s * 0.04)],
              fill=sail)  # fmt: skip
    d.polygon([(s * 0.47, s * 0.2), (s * 0.47, y - s * 0.04), (s * 0.22, y - s * 0.04)], fill=sail)


def _draw_umbrella(d: Any, rng: random.Random, s: int) -> None:
    color = _any_color(rng)
    c, r = s / 2, s * 0.4
    d.pieslice([c - r, s * 0.15, c + r, s * 0.15 + 2 * r], 180, 360, fill=color)
    for k in range(4):  # scalloped rim
        x = c - r + r / 4 + k * r / 2
        d.ellipse([x - r / 4, s * 0.15 + r - r / 8, x + r / 4, s * 0.15 + r + r / 8],
                  fill=(0, 0, 0, 0))  # fmt: skip
    w = max(2, s // 30)
    d.line([(c, s * 0.15 + r), (c, s * 0.85)], fill=(40, 40, 40), width=w)
    d.arc([c - s * 0.1, s * 0.78, c, s * 0.92], 0, 180, fill=(40, 40, 40), width=w)


def _draw_coffee_cup(d: Any, rng: random.Random, s: int) -> None:
    color = _any_color(rng)
    d.ellipse([s * 0.12, s * 0.78, s * 0.88, s * 0.9], fill=_jitter(rng, (230, 230, 230), 15))
    d.ellipse([s * 0.58, s * 0.42, s * 0.82, s * 0.66], outline=color, width=max(2, s // 18))
    body = [(s * 0.22, s * 0.36), (s * 0.7, s * 0.36), (s * 0.63, s * 0.82), (s * 0.29, s * 0.82)]
    d.polygon(body, fill=color)
    d.ellipse([s * 0.22, s * 0.32, s * 0.7, s * 0.4], fill=(90, 55, 25))
    if rng.random() < 0.5:  # steam
        for x in (s * 0.38, s * 0.52):
            d.arc([x - s * 0.04, s * 0.12, x + s * 0.04, s * 0.28], 90, 270, fill=(200, 200, 200),
                  width=max(1, s // 40))  # fmt: skip


def _draw_alarm_clock(d: Any, rng: random.Random, s: int) -> None:
    rim = _any_color(rng)
    c, r = s / 2, s * 0.3
    for bx in (c - r * 0.75, c + r * 0.75):  # bells
        d.ellipse([bx - r * 0.35, c - r * 1.25, bx + r * 0.35, c - r * 0.6], fill=rim)
    d.line([(c - r * 0.6, c + r * 0.8), (c - r * 0.9, c + r * 1.3)], fill=rim, width=s // 25)
    d.line([(c + r * 0.6, c + r * 0.8), (c + r * 0.9, c + r * 1.3)], fill=rim, width=s // 25)
    d.ellipse([c - r, c - r, c + r, c + r], fill=(250, 250, 245), outline=rim, width=s // 18)
    for hand_len, a in ((0.55, rng.uniform(0, 2 * math.pi)), (0.8, rng.uniform(0, 2 * math.pi))):
        d.line([(c, c), (c + r * hand_len * math.cos(a), c + r * hand_len * math.sin(a))],
               fill=(20, 20, 20), width=max(2, s // 40))  # fmt: skip


def _draw_starfish(d: Any, rng: random.Random, s: int) -> None:
    color = _jitter(rng, (230, 90, 60), 35)
    d.polygon(_star(s / 2, s / 2, s * 0.44, s * rng.uniform(0.16, 0.2), 5, 0.0), fill=color)
    for k in range(5):  # the dotted texture of real starfish
        a = 2 * math.pi * k / 5 - math.pi / 2
        px, py = s / 2 + s * 0.2 * math.cos(a), s / 2 + s * 0.2 * math.sin(a)
        d.ellipse([px - s * 0.02, py - s * 0.02, px + s * 0.02, py + s * 0.02],
                  fill=_jitter(rng, color, 60))  # fmt: skip


DRAWERS: dict[str, Drawer] = {
    "sun": _draw_sun, "soccer_ball": _draw_soccer_ball, "house": _draw_house,
    "tree": _draw_tree, "car": _draw_car, "goldfish": _draw_goldfish,
    "sunflower": _draw_sunflower, "sailboat": _draw_sailboat, "umbrella": _draw_umbrella,
    "coffee_cup": _draw_coffee_cup, "alarm_clock": _draw_alarm_clock,
    "starfish": _draw_starfish,
}  # fmt: skip
# Upright things tilt a little; round or symmetric things turn freely.
MAX_ROTATION = {"sun": 180, "soccer_ball": 180, "starfish": 180, "alarm_clock": 30}


def _background(rng: random.Random, size: int) -> Any:
    from PIL import Image, ImageDraw

    top, bottom = _any_color(rng), _any_color(rng)
    if rng.random() < 0.4:
        bottom = top
    img = Image.new("RGB", (size, size), top)
    d = ImageDraw.Draw(img)
    for y in range(size):  # vertical gradient: sky, sand, a wall
        t = y / (size - 1)
        d.line(
            [(0, y), (size, y)],
            fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)),
        )
    for _ in range(rng.randint(0, 4)):  # clutter: blobs that belong to no class
        x, y, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(size * 0.03, size * 0.1)
        d.ellipse([x - r, y - r, x + r, y + r], fill=_jitter(rng, top, 60))
    return img


def draw_image(kinds: list[str], rng: random.Random, size: int = IMAGE_SIZE) -> Any:
    """An RGB `size`x`size` PIL image with `kinds` drawn at random place, scale and angle."""
    from PIL import Image, ImageDraw

    big = size * SUPERSAMPLE
    img = _background(rng, big)
    scale_range = (0.55, 0.95) if len(kinds) == 1 else (0.38, 0.55)
    for i, kind in enumerate(kinds):
        obj_size = int(big * rng.uniform(*scale_range))
        layer = Image.new("RGBA", (obj_size, obj_size), (0, 0, 0, 0))
        DRAWERS[kind](ImageDraw.Draw(layer), rng, obj_size)
        limit = MAX_ROTATION.get(kind, 20)
        layer = layer.rotate(rng.uniform(-limit, limit), resample=Image.Resampling.BILINEAR)
        if rng.random() < 0.5 and kind not in ("sun", "soccer_ball"):
            layer = layer.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        span = big - obj_size
        if len(kinds) == 1:
            x = rng.randint(0, span)
        else:  # two objects: left and right halves, so both stay visible
            half = (big - obj_size) // 2
            x = rng.randint(0, half) if i == 0 else rng.randint(half, span)
        img.paste(layer, (x, rng.randint(0, span)), layer)
    img = img.resize((size, size), Image.Resampling.BOX)
    # Sensor-like noise from our own rng (PIL's effect_noise has its own unseeded state).
    noise = Image.frombytes("RGB", (size, size), rng.randbytes(size * size * 3))
    return Image.blend(img, noise, rng.uniform(0.0, 0.15))


def _caption(kinds: list[str], rng: random.Random) -> tuple[str, list[str], list[str]]:
    """(caption, tags, tag_forms) for an image showing `kinds`."""
    words = rng.choice(WORDS)
    tags: list[tuple[str, str]] = []
    if rng.random() >= P_NO_TAG:
        tags = [rng.choice(KIND_TAGS[k])[::-1] for k in kinds]  # (tag, form)
        if rng.random() < P_CONTEXT:
            tags.append((rng.choice(CONTEXT_TAGS[kinds[0]]), "context"))
        if rng.random() < P_META:
            for meta in rng.sample(META_TAGS, rng.randint(1, 3)):
                tags.append((meta, "meta"))
        rng.shuffle(tags)
    else:  # no hashtag, but the words may name the object, as alt-text often does
        words = f"{words}, my {kinds[0].replace('_', ' ')}"
    parts = [words]
    parts += ["#" + tag for tag, _ in tags]
    if rng.random() < P_NOISE:
        parts.insert(rng.randint(0, len(parts)), rng.choice(NOISE))
    return " ".join(parts), [t for t, _ in tags], [f for _, f in tags]


def generate_corpus(folder: str | Path, n_images: int = 3000, seed: int = 0) -> Path:
    """Write `n_images` drawn images and their captions under `folder`; return the table path.

    The folder is written whole or not at all (built under a temporary name, then renamed).
    Rows with status `missing` have no image file; `corrupt` rows have a file of non-image
    bytes. See the module docstring for the table's schema.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if n_images < 1:
        raise ValueError(f"n_images must be >= 1, got {n_images}")
    rng = random.Random(seed)
    kinds_all = list(DEMO_KINDS)
    rows: dict[str, list[Any]] = {
        k: [] for k in ("url", "caption", "kinds", "tags", "tag_forms", "status")
    }
    final = Path(folder)
    with staged_dir(final) as tmp:
        (tmp / "images").mkdir()
        for i in range(n_images):
            n_obj = 2 if rng.random() < P_TWO_OBJECTS else 1
            kinds = rng.choices(kinds_all, KIND_WEIGHTS)
            if n_obj == 2:  # a second, different kind, with the same long tail
                others = [(k, w) for k, w in zip(kinds_all, KIND_WEIGHTS, strict=True)
                          if k != kinds[0]]  # fmt: skip
                kinds += rng.choices([k for k, _ in others], [w for _, w in others])
            caption, tags, forms = _caption(kinds, rng)
            img = draw_image(kinds, rng)
            url = f"images/{i:06d}.jpg"
            fault = rng.random()
            if fault < P_MISSING:
                status = "missing"
            elif fault < P_MISSING + P_CORRUPT:
                status = "corrupt"
                (tmp / url).write_bytes(b"<html>not an image</html>\n")
            else:
                status = "ok"
                buf = io.BytesIO()
                img.save(buf, format="JPEG", quality=rng.randint(80, 95))
                (tmp / url).write_bytes(buf.getvalue())
            for key, value in zip(rows, (url, caption, kinds, tags, forms, status), strict=True):
                rows[key].append(value)
        pq.write_table(pa.table(rows), tmp / "captions.parquet")
    return final / "captions.parquet"
