"""A small procedural text corpus: short sentences of one topic each, as token ids.

Every class has its own small vocabulary (positive and negative opinion words, sports,
technology, food, weather); a sentence mixes words of its class with common function
words and, with probability `noise` per topic word, a word of another class. Only the
topic words tell the classes apart, so a trained embedding learns to put the words of a
topic close together: words used alike get similar vectors.

Sentences are tokenised against a fixed vocabulary: id 0 is padding (after the last
word), id 1 `<unk>` for words beyond `vocabulary_size`, then the function words, then the
topic words, one of each class in turn. Token ids are int32 and never normalised.
"""
from __future__ import annotations

import numpy as np
from pydantic import Field

from ..dataset import Raw
from ..errors import DataError
from ..options import SourceOptions
from ..seeding import rng_for

PAD, UNK = "<pad>", "<unk>"
COMMON = ["the", "a", "an", "this", "that", "it", "is", "was", "and", "but", "so", "very",
          "really", "quite", "i", "we", "you", "they", "my", "our", "of", "to", "in", "on",
          "with", "for", "at", "just"]
TOPICS = {
    "positive": ["great", "good", "wonderful", "excellent", "lovely", "happy", "love",
                 "enjoyed", "amazing", "fantastic", "brilliant", "pleasant", "delightful",
                 "superb", "perfect", "nice", "beautiful", "fun", "best", "glad"],
    "negative": ["bad", "terrible", "awful", "boring", "hate", "poor", "horrible", "sad",
                 "worst", "annoying", "disappointing", "dull", "ugly", "broken", "angry",
                 "wrong", "painful", "useless", "waste", "mediocre"],
    "sports": ["game", "team", "match", "goal", "player", "coach", "score", "league",
               "season", "win", "football", "tennis", "stadium", "referee", "race", "ball",
               "champion", "tournament", "striker", "penalty"],
    "tech": ["computer", "software", "phone", "app", "internet", "code", "data", "chip",
             "laptop", "network", "server", "program", "robot", "screen", "battery",
             "cloud", "algorithm", "update", "keyboard", "website"],
    "food": ["pizza", "bread", "cheese", "soup", "dinner", "lunch", "recipe", "kitchen",
             "salad", "pasta", "fruit", "coffee", "tea", "cake", "rice", "chicken", "spicy",
             "sweet", "restaurant", "chef"],
    "weather": ["rain", "snow", "sun", "wind", "storm", "cloudy", "sunny", "cold", "hot",
                "temperature", "forecast", "thunder", "fog", "humid", "breeze", "winter",
                "summer", "frost", "degrees", "umbrella"],
}
DEFAULT_LENGTH = 16
MIN_WORDS = 4
TOPIC_SHARE = 0.4  # fraction of a sentence's words that are topic words


class Options(SourceOptions):
    n: int = Field(2000, ge=1, description="number of sentences")
    classes: int = Field(4, ge=2, le=len(TOPICS),
                         description="how many topics: positive, negative, sports, tech, "
                                     "food, weather (the first `classes`)")
    vocabulary_size: int | None = Field(
        None, ge=3, description="keep this many ids (padding, <unk> and the most common "
                                "words); default: the whole vocabulary")
    noise: float = Field(0.1, ge=0, le=1,
                         description="chance that a topic word comes from another class")


def vocabulary(options: Options) -> list[str]:
    """The words by id for these options (ids beyond the list are never produced)."""
    words = [PAD, UNK, *COMMON,
             *(w for group in zip(*list(TOPICS.values())[:options.classes]) for w in group)]
    return words[:options.vocabulary_size] if options.vocabulary_size else words


def load(cfg, options: Options, input_shape, seed) -> Raw:
    length = sequence_length(input_shape)
    n = min(options.n, cfg.limit or options.n)
    words = vocabulary(options)
    x, y = generate(n, options.classes, length, options.noise, len(words), seed)
    return Raw(x, y, "classification", options.classes, list(TOPICS)[:options.classes],
               "text", tokens=True, vocabulary=words)


def sequence_length(input_shape) -> int:
    if input_shape is None:
        return DEFAULT_LENGTH
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 1 or shape[0] < MIN_WORDS:
        raise DataError(f"text makes sequences of token ids, but the architecture's input "
                        f"shape is {shape}", hint=(
                            f"use an int32 input of shape [length] (length >= {MIN_WORDS}), "
                            "then an `embedding` layer"))
    return shape[0]


def generate(n: int, classes: int, length: int, noise: float, size: int, seed: int):
    """n padded sentences (int32 ids, (n, length)) and balanced int32 labels."""
    rng = rng_for(seed, "text")
    y = rng.permutation(np.arange(n) % classes).astype(np.int32)
    n_common, per_topic = len(COMMON), len(TOPICS["positive"])
    lengths = rng.integers(max(MIN_WORDS, length // 2), length + 1, n)
    pos = np.arange(length)[None, :]
    # word kinds: topic words (of the own class, or with `noise` of another), else common
    topical = rng.random((n, length)) < TOPIC_SHARE
    topical[np.arange(n), rng.integers(0, lengths)] = True  # at least one topic word
    other = (y[:, None] + rng.integers(1, classes, (n, length))) % classes
    topic = np.where(rng.random((n, length)) < noise, other, y[:, None])
    topic_ids = 2 + n_common + rng.integers(0, per_topic, (n, length)) * classes + topic
    common_ids = 2 + rng.integers(0, n_common, (n, length))
    ids = np.where(topical, topic_ids, common_ids)
    ids = np.where(ids < size, ids, 1)              # beyond the vocabulary: <unk>
    ids = np.where(pos < lengths[:, None], ids, 0)  # padding after the last word
    return ids.astype(np.int32), y


def decode(ids, words: list[str]) -> str:
    """Token ids back to a sentence (padding dropped), e.g. to read examples."""
    return " ".join(words[i] for i in np.asarray(ids).tolist() if i != 0)
