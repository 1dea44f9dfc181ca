"""Offline dense curve: scores of K growing prefixes of one video, with the static-video control."""

from __future__ import annotations

import dataclasses

import numpy as np
from tqdm import tqdm

from ..method.engine import StreamingEngine
from .metrics import min_max_progress, prefix_lengths, voc
from ..method.reference import ReferenceScorer
from ..method.config import ScoringConfig
from ..method.scoring import Score
from ..stream.episode import Episode
from ..stream.reward_stream import RewardStream, run_episode
from ..stream.update import RewardUpdate

DEFAULT_PREFIXES = 15
METHODS = ("stream", "reference")


@dataclasses.dataclass
class Curve:
    lengths: list[int]          # frames in each scored prefix
    times: list[float]          # time of each prefix's last frame (s from the episode start)
    scores: list[Score]
    stamps: list[float] | None = None   # header stamps of those frames, when they come from ROS messages
    updates: list[RewardUpdate] | None = None  # the node's updates, when scored through the reward stream

    @property
    def values(self) -> list[float]:
        return [s.value for s in self.scores]

    @property
    def progress(self) -> list[float]:
        return min_max_progress(self.values)

    @property
    def voc(self) -> float:
        return voc(self.values)


def stream_curve(rewards: RewardStream, episode: Episode) -> Curve:
    """The episode scored through the reward stream (``stream.episode.run_episode``, the node's updates): one
    point per update, stamped where the episode has stamps."""
    updates: list[RewardUpdate] = run_episode(rewards, episode)
    contrastive = rewards.engine.config.contrastive
    return Curve(lengths=[u.frames for u in updates], times=[u.time for u in updates],
                 scores=[Score(u.true_logprobs, u.false_logprobs, contrastive) for u in updates],
                 stamps=[u.stamp for u in updates] if episode.stamps is not None else None, updates=updates)


@dataclasses.dataclass
class CurveReport:
    """The real curve and the static-video control (first frame repeated to the same length)."""

    curve: Curve
    static: Curve

    def summary(self) -> dict:
        stamps = {"prefix_stamps": self.curve.stamps} if self.curve.stamps is not None else {}
        published = {} if self.curve.updates is None else {
            "reward": [u.reward for u in self.curve.updates],
            "causal_progress": [u.progress for u in self.curve.updates],
            "success": [u.success for u in self.curve.updates]}
        return {
            **stamps,
            **published,
            "prefix_lengths": self.curve.lengths,
            "prefix_times": self.curve.times,
            "curve": self.curve.values,
            "progress": self.curve.progress,
            "voc": self.curve.voc,
            "static_curve": self.static.values,
            "static_voc": self.static.voc,
            "per_prompt_true_logprobs": [list(s.true_logprobs) for s in self.curve.scores],
            "per_prompt_false_logprobs": [list(s.false_logprobs) for s in self.curve.scores],
        }


def score_prefixes(reward_model, config: ScoringConfig, frames: list[np.ndarray], times: list[float], task: str,
                   k: int = DEFAULT_PREFIXES, method: str = "stream", progress_label: str | None = None) -> Curve:
    """Score frames[:L] for each L in linspace(1, N, K). ``stream`` (default) grows one cached
    episode; ``reference`` recomputes every prefix from scratch, as the published code does."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: use {' or '.join(METHODS)}")
    lengths = prefix_lengths(len(frames), k)
    bar = tqdm(lengths, desc=progress_label, disable=progress_label is None, unit="prefix")
    scores = []
    if method == "reference":
        scorer = ReferenceScorer(reward_model, config)
        scores = [scorer.score(frames[:n], times[:n], task) for n in bar]
    else:
        engine = StreamingEngine(reward_model, config, max_frames=max(64, len(frames) + len(frames) % 2))
        for n in bar:
            for i in range(engine.num_frames, n):
                engine.add_frame(frames[i], times[i])
            scores.append(engine.score(task).score)
    return Curve(lengths=lengths, times=[times[n - 1] for n in lengths], scores=scores)


def evaluate_video(reward_model, config: ScoringConfig, frames: list[np.ndarray], times: list[float], task: str,
                   k: int = DEFAULT_PREFIXES, method: str = "stream", show_progress: bool = False) -> CurveReport:
    curve = score_prefixes(reward_model, config, frames, times, task, k, method,
                           "video" if show_progress else None)
    static = score_prefixes(reward_model, config, [frames[0]] * len(frames), times, task, k, method,
                            "static control" if show_progress else None)
    return CurveReport(curve=curve, static=static)
