"""Scoring the episodes of a bag through the node's reward stream: one update per sampled frame,
exactly the updates (score, reward, progress, success) the node publishes when the bag is
replayed to it at a pace its model keeps up with. An episode that fails is recorded with its
error; the others are still scored."""

from __future__ import annotations

import dataclasses
import math
import statistics
import time

from tqdm import tqdm

from ..errors import TopRewardError
from ..sources.bags import BagEpisodes
from ..stream.episode import Episode
from ..stream.reward_stream import RewardStream
from ..stream.settings import RewardSettings
from .curve import CurveReport, stream_curve


@dataclasses.dataclass
class EpisodeResult:
    index: int
    task: str
    report: CurveReport | None   # None when the episode failed
    seconds: float               # compute time of the real curve
    error: str = ""

    @property
    def failed(self) -> bool:
        return self.report is None

    def row(self) -> dict:
        if self.report is None:
            return {"episode": self.index, "task": self.task, "error": self.error}
        curve = self.report.curve
        assert curve.updates is not None  # stream_curve keeps the stream's updates
        return {"episode": self.index, "task": self.task, "frames": curve.lengths[-1], "updates": len(curve.scores),
                "voc": curve.voc, "static_voc": self.report.static.voc, "final_reward": curve.values[-1],
                "final_progress": curve.updates[-1].progress, "success": curve.updates[-1].success,
                "updates_per_second": len(curve.scores) / self.seconds if self.seconds > 0 else math.inf}


def episode_tasks(episodes: list[Episode], default_task: str | None, listed: dict[int, str]) -> list[str]:
    """Each episode's task: listed (per-episode YAML) > its marker's > the default."""
    tasks = []
    for episode in episodes:
        task = listed.get(episode.index) or episode.task or default_task
        if not task or not task.strip():
            raise TopRewardError(f"episode {episode.index} has no task: pass --task or list it in --episodes-yaml")
        tasks.append(task.strip())
    return tasks


def evaluate_episodes(reward_model, settings: RewardSettings, bag: BagEpisodes, tasks: list[str],
                      show_progress: bool = True) -> list[EpisodeResult]:
    rewards = RewardStream.from_settings(settings, reward_model)
    results = []
    for episode, task in tqdm(list(zip(bag.episodes, tasks)), desc="episodes", unit="episode",
                              disable=not show_progress):
        start = time.perf_counter()
        episode = dataclasses.replace(episode, task=task)
        try:
            curve = stream_curve(rewards, episode)
            seconds = time.perf_counter() - start
            static = stream_curve(rewards, episode.static_control())
        except TopRewardError as exc:
            results.append(EpisodeResult(episode.index, task, None, time.perf_counter() - start, str(exc)))
            continue
        results.append(EpisodeResult(episode.index, task, CurveReport(curve=curve, static=static), seconds))
    return results


def summarize(results: list[EpisodeResult]) -> dict:
    failed = [r for r in results if r.failed]
    results = [r for r in results if not r.failed]
    reports = [r.report for r in results if r.report is not None]
    vocs = [report.curve.voc for report in reports if not math.isnan(report.curve.voc)]
    statics = [report.static.voc for report in reports if not math.isnan(report.static.voc)]
    updates = sum(len(report.curve.scores) for report in reports)
    seconds = sum(r.seconds for r in results)
    return {
        "episodes": len(results),
        "voc_mean": statistics.fmean(vocs) if vocs else math.nan,
        "voc_std": statistics.pstdev(vocs) if vocs else math.nan,
        "voc_defined": len(vocs),
        "static_voc_mean": statistics.fmean(statics) if statics else math.nan,
        "updates": updates,
        "updates_per_second": updates / seconds if seconds > 0 else math.nan,
        "per_episode": [r.row() for r in results],
        "failed_episodes": [r.row() for r in failed],
    }
