"""Made-up English electronics reviews and news headlines, for machines without real data (say so wherever
they are used)."""
import csv
import io
from pathlib import Path
from typing import List

import numpy as np

from paddlenlp_fastformer.file_utils import write_text_atomically

from .labels import STAR_LABELS
from .prepare import jsonl
from .readers import PathLike

__all__ = ["generate_synthetic_reviews", "write_synthetic_reviews", "NEWS_TOPICS", "write_synthetic_news"]

# Class counts of the real Electronics sample: a natural, positive-skewed distribution.
_SYNTHETIC_STAR_WEIGHTS = np.array([147, 85, 180, 655, 1983]) / 3050
_PRODUCTS = (
    "headphones", "charger", "keyboard", "mouse", "USB cable", "speaker", "router", "camera",
    "tablet case", "power bank", "monitor", "webcam", "memory card", "HDMI adapter", "remote",
)
_OPENERS = (
    "I bought this {product} last month.",
    "Got the {product} as a gift for my son.",
    "I needed a new {product} for my home office.",
    "Ordered this {product} to replace my old one.",
    "This is my second {product} from this brand.",
)
_NEUTRAL = (
    "Shipping was on time.",
    "I use it every day.",
    "The box was plain.",
    "It comes in black and white.",
    "Setup took a few minutes.",
)
# Phrases per star rating; their vocabulary is what a model can learn from.
_PHRASES = {
    1: ("it stopped working after two days", "complete waste of money", "it arrived broken",
        "I returned it for a refund", "terrible quality", "do not buy this", "worst purchase I have made"),
    2: ("disappointing performance", "it feels cheap and flimsy", "it works only some of the time",
        "not worth the price", "the instructions were useless", "the battery dies quickly"),
    3: ("it is okay for the price", "it does the job but nothing special", "average quality",
        "some features work and others do not", "decent but the sound is weak", "I have mixed feelings about it"),
    4: ("it works well", "good value for the money", "solid build with a minor flaw",
        "I am happy with it overall", "setup was easy", "I would buy it again despite a small issue"),
    5: ("excellent quality", "it works perfectly", "I absolutely love it", "best purchase this year",
        "highly recommended", "it exceeded my expectations"),
}
_SUMMARIES = {
    1: ("Junk", "Avoid", "Broken on arrival", "Total waste"),
    2: ("Disappointed", "Not great", "Cheaply made"),
    3: ("It's okay", "Average", "Does the job"),
    4: ("Good product", "Pretty good", "Works well"),
    5: ("Excellent!", "Love it", "Five stars", "Perfect"),
}
# Chance that a sentiment sentence comes from a neighbouring rating: real
# reviews mix tones, and a perfectly separable task would teach nothing.
_NEIGHBOUR_PHRASE_RATE = 0.25


def _sentiment_sentence(stars: int, rng: np.random.Generator) -> str:
    if rng.random() < _NEIGHBOUR_PHRASE_RATE:
        stars = int(np.clip(stars + rng.choice((-1, 1)), 1, len(STAR_LABELS)))
    phrase = str(rng.choice(_PHRASES[stars]))
    return phrase[0].upper() + phrase[1:] + "."


def _synthetic_review(stars: int, rng: np.random.Generator) -> dict:
    sentences = [str(rng.choice(_OPENERS)).format(product=rng.choice(_PRODUCTS))]
    sentences += [_sentiment_sentence(stars, rng) for _ in range(rng.integers(1, 5))]
    if rng.random() < 0.5:
        sentences.insert(int(rng.integers(1, len(sentences) + 1)), str(rng.choice(_NEUTRAL)))
    return {"overall": float(stars), "reviewText": " ".join(sentences), "summary": str(rng.choice(_SUMMARIES[stars]))}


def generate_synthetic_reviews(num_samples: int, seed: int = 0) -> List[dict]:
    """Made-up English electronics reviews as McAuley records (``overall``, ``reviewText``, ``summary``).

    Star ratings follow the skew of real Electronics reviews (mostly 5 stars)
    and each rating has its own phrases, so a classifier can learn from them.
    Meant for machines without the real data; say so wherever they are used.
    """
    rng = np.random.default_rng(seed)
    stars = rng.choice(np.arange(1, len(STAR_LABELS) + 1), size=num_samples, p=_SYNTHETIC_STAR_WEIGHTS)
    return [_synthetic_review(int(rating), rng) for rating in stars]


def write_synthetic_reviews(path: PathLike, num_samples: int, seed: int = 0) -> Path:
    """Write :func:`generate_synthetic_reviews` to ``path`` as McAuley JSON lines, for the ordinary readers."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, jsonl(generate_synthetic_reviews(num_samples, seed)))
    return path


# AG News's four topics and its CSV layout (label, title, description), with made-up stories.
NEWS_TOPICS = ("World", "Sports", "Business", "Sci/Tech")
_NEWS_WORDS = {
    "World": ("minister", "election", "border", "embassy", "talks", "parliament", "ceasefire", "refugees"),
    "Sports": ("coach", "season", "goal", "championship", "striker", "tournament", "injury", "playoff"),
    "Business": ("shares", "profit", "merger", "quarter", "investors", "earnings", "market", "bank"),
    "Sci/Tech": ("software", "chip", "researchers", "satellite", "browser", "startup", "genome", "network"),
}
_NEWS_FILLER = ("on monday", "officials said", "according to a report", "this week", "in a statement", "late on friday")


def _news_story(topic: str, rng: np.random.Generator) -> dict:
    words = _NEWS_WORDS[topic]
    title = " ".join(str(word) for word in rng.choice(words, size=3, replace=False)).capitalize()
    sentences = []
    for _ in range(int(rng.integers(1, 4))):
        # A word of another topic now and then, so that the task is not perfectly separable.
        pool = words if rng.random() > 0.2 else _NEWS_WORDS[str(rng.choice(NEWS_TOPICS))]
        chosen = " ".join(str(word) for word in rng.choice(pool, size=3, replace=False))
        sentences.append(f"The {chosen} {rng.choice(_NEWS_FILLER)}.")
    return {"label": topic, "title": title, "description": " ".join(sentences)}


def write_synthetic_news(path: PathLike, num_samples: int, seed: int = 0) -> Path:
    """Made-up news stories as an AG News-style CSV (``label,title,description``; the four topics of
    :data:`NEWS_TOPICS`, equally likely), for tests and demos of a non-rating task without real data."""
    rng = np.random.default_rng(seed)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=("label", "title", "description"), lineterminator="\n")
    writer.writeheader()
    writer.writerows(_news_story(str(rng.choice(NEWS_TOPICS)), rng) for _ in range(num_samples))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, buffer.getvalue())
    return path
