"""Streaming TOPReward: a growing episode scored with cached vision features and a cached language KV.

Each complete pair of frames is encoded once by the ViT (with its DeepStack levels) and
appended once to the language KV cache, at the exact 3-D MRoPE positions of the full
sequence. An update then runs only the new pair's tokens, the closing token and the
prompts: the prompts are batched into one forward as branches that all see the shared
prefix but not each other, and the cache is cropped back to the committed prefix after.

An odd last frame is scored as the pair (frame, frame), the way the processor pads a
video, but never committed: it changes when its partner arrives.

Long episodes: when more than ``max_frames`` frames are kept, every other frame is
dropped (the first frame always stays), the frame stride doubles (only every
``stride``-th pushed frame is kept from then on) and the cache is rebuilt once from the
kept frames (max_frames is even, so the newest frame stays too). Memory stays bounded by ``max_frames``; each update reports the stride and
whether it rebuilt. Scores always equal the full recompute over the kept frames.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch
from transformers import DynamicCache

from .frames import FrameError, pair_frames, resize_frame
from .prompts import fill_prompt
from .rendering import VIDEO, Renderer, Segment
from .scoring import Score, ScoringConfig, answer_logprobs, make_score
from .vision import GroupFeatures, encode_pairs, rope_index

DEFAULT_MAX_FRAMES = 64  # frames kept per episode before every other one is dropped
MAX_FRAMES_RANGE = (4, 1024)  # an even number in this range: past it every other frame is dropped


@dataclasses.dataclass(frozen=True)
class Update:
    """One reward update: the score of the episode so far and what it cost."""

    score: Score
    num_frames: int          # frames in the scored prefix (after any subsampling)
    frame_time: float        # time of the newest frame (seconds)
    new_tokens: int          # tokens run through the language model in this update
    cached_tokens: int       # committed prefix length in the KV cache after the update
    vision_ms: float
    language_ms: float
    total_ms: float
    stride: int              # keep 1 of every `stride` pushed frames (long-episode policy)
    rebuilt: bool            # this update rebuilt the cache after subsampling


class StreamingEngine:
    """One episode's state. Not thread-safe: one engine per stream (Qwen3-VL keeps rope state)."""

    def __init__(self, reward_model, config: ScoringConfig, max_frames: int = DEFAULT_MAX_FRAMES):
        if max_frames < 4 or max_frames % 2:
            raise ValueError(f"max_frames must be an even number of at least 4, got {max_frames}")
        self.reward_model = reward_model
        self.config = config
        self.max_frames = max_frames
        self.renderer = Renderer(reward_model.tokenizer, role_markers=config.role_markers)
        self._prompt_cache: dict[str, list[Segment]] = {}
        self.reset()

    # -- episode state -------------------------------------------------------------------
    def reset(self) -> None:
        """Start a new episode (frames, vision features and KV cache are dropped)."""
        self.frames: list[np.ndarray] = []
        self.times: list[float] = []
        self.stride = 1
        self._pushed = 0
        self._clear_cache()

    def _clear_cache(self) -> None:
        self._cache = DynamicCache(config=self.reward_model.model.config.text_config)
        self._cache_len = 0
        self._next_position = 0
        self._committed_pairs = 0
        self._tail: GroupFeatures | None = None
        self._rebuilt = False

    def invalidate(self) -> None:
        """Drop the caches but keep the frames: the next score rebuilds them (after a failed update)."""
        self._clear_cache()

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    def add_frame(self, frame: np.ndarray, timestamp: float) -> bool:
        """Add an RGB frame taken at ``timestamp`` seconds. Returns False if the stride skips it."""
        if self.times and timestamp < self.times[-1]:
            raise FrameError(f"frame time {timestamp} is earlier than the previous frame ({self.times[-1]})")
        frame = resize_frame(frame, self.config.resolution)
        keep = self._pushed % self.stride == 0
        self._pushed += 1
        if not keep:
            return False
        self.frames.append(frame)
        self.times.append(float(timestamp))
        self._tail = None
        if len(self.frames) > self.max_frames:
            self._subsample()
        return True

    def _subsample(self) -> None:
        # Kept frames are the pushed frames 0, s, 2s, ...; with max_frames even the newest one
        # stays, and from now on the pushed frames 0, 2s, 4s, ... are kept.
        self.frames = self.frames[::2]
        self.times = self.times[::2]
        self.stride *= 2
        self._clear_cache()
        self._rebuilt = True

    def push(self, frame: np.ndarray, timestamp: float, task: str) -> Update:
        """Add a sampled frame and score the episode: one reward update (live and offline alike)."""
        self.add_frame(frame, timestamp)
        return self.score(task)

    # -- scoring ------------------------------------------------------------------------
    def _prompts(self, task: str) -> list[Segment]:
        if task not in self._prompt_cache:
            self._prompt_cache = {task: [self.renderer.prompt(fill_prompt(t, task)) for t in self.config.prompts]}
        return self._prompt_cache[task]

    def check_task(self, task: str) -> str:
        """The stripped task if every prompt renders with it; else a PromptError or RenderError.
        Touches no episode state, so another thread may call it while this one scores."""
        for template in self.config.prompts:
            self.renderer.prompt(fill_prompt(template, task))
        return task.strip()

    @torch.inference_mode()
    def score(self, task: str) -> Update:
        """Score the episode so far for ``task``."""
        if not self.frames:
            raise FrameError("no frames in the episode yet")
        prompts = self._prompts(task)
        start = time.perf_counter()

        complete = len(self.frames) // 2
        start_frame, end_frame = 2 * self._committed_pairs, 2 * complete
        new_pairs = (pair_frames(self.frames[start_frame:end_frame], self.times[start_frame:end_frame])
                     if complete > self._committed_pairs else [])
        odd = len(self.frames) % 2 == 1
        tail_pair = pair_frames(self.frames[-1:], self.times[-1:]) if odd and self._tail is None else []
        features = encode_pairs(self.reward_model, new_pairs + tail_pair)
        if tail_pair:
            self._tail = features.pop()
        vision_done = time.perf_counter()

        committed = self.renderer.groups((g.timestamp, g.num_tokens) for g in features)
        if self._cache_len == 0:
            committed = self.renderer.prefix() + committed
        groups = list(features)
        shared = Segment([], [])
        if odd:
            shared = self.renderer.group(self._tail.timestamp, self._tail.num_tokens)
            groups.append(self._tail)
        shared = shared + self.renderer.close_video()
        logprobs = self._forward(committed, shared, groups, prompts)
        self._committed_pairs = complete
        end = time.perf_counter()

        rebuilt, self._rebuilt = self._rebuilt, False
        return Update(
            score=make_score(logprobs, self.config.contrastive), num_frames=len(self.frames),
            frame_time=self.times[-1], new_tokens=len(committed) + len(shared) + sum(len(p) for p in prompts),
            cached_tokens=self._cache_len, vision_ms=(vision_done - start) * 1e3,
            language_ms=(end - vision_done) * 1e3, total_ms=(end - start) * 1e3,
            stride=self.stride, rebuilt=rebuilt)

    def _forward(self, committed: Segment, shared: Segment, groups: list[GroupFeatures],
                 prompts: list[Segment]) -> torch.Tensor:
        """Append ``committed`` to the cache for good; score every prompt after ``shared``."""
        model = self.reward_model.model.model
        device = self.reward_model.device
        linear = committed + shared
        ids = linear.ids + [i for p in prompts for i in p.ids]
        types = linear.types + [t for p in prompts for t in p.types]

        positions = self._positions(linear, groups, prompts)
        embeds = model.get_input_embeddings()(torch.tensor([ids], device=device))
        visual = torch.tensor([[t == VIDEO for t in types]], device=device)
        deepstack = None
        if groups:
            embeds[visual] = torch.cat([g.embeds for g in groups]).to(embeds.dtype)
            deepstack = [torch.cat(level) for level in zip(*(g.deepstack for g in groups))]
        mask = self._branch_mask(len(linear), [len(p) for p in prompts], embeds.dtype) if len(prompts) > 1 else None

        output = model.language_model(
            inputs_embeds=embeds, position_ids=positions, attention_mask=mask, past_key_values=self._cache,
            use_cache=True, visual_pos_masks=visual if groups else None, deepstack_visual_embeds=deepstack)
        ends = np.cumsum([len(p) for p in prompts]) + len(linear) - 1
        logprobs = answer_logprobs(self.reward_model, output.last_hidden_state[0, ends.tolist()])

        self._cache.crop(-(len(ids) - len(committed)))
        self._cache_len += len(committed)
        if len(committed):
            self._next_position = int(positions[:, 0, :len(committed)].max()) + 1
        return logprobs

    def _positions(self, linear: Segment, groups: list[GroupFeatures], prompts: list[Segment]) -> torch.Tensor:
        """3-D MRoPE ids: the model's get_rope_index over the new segment, offset to its place in the
        full sequence (the ids are translation invariant); each prompt branch starts at the same place."""
        device = self.reward_model.device
        grids = torch.cat([g.grid_thw for g in groups]) if groups else None
        linear_pos = rope_index(self.reward_model.model.model, torch.tensor([linear.ids], device=device),
                                torch.tensor([linear.types], device=device), grids)
        linear_pos = linear_pos + self._next_position
        branch_start = int(linear_pos.max()) + 1
        branches = [torch.arange(len(p), device=device) + branch_start for p in prompts]
        branch_pos = torch.cat(branches).view(1, 1, -1).expand(3, 1, -1)
        return torch.cat([linear_pos, branch_pos.to(linear_pos.dtype)], dim=2)

    def _branch_mask(self, linear_len: int, branch_lens: list[int], dtype: torch.dtype) -> torch.Tensor:
        """Additive (1, 1, q, kv) mask: causal over cache + linear part, each branch sees only itself after it."""
        device = self.reward_model.device
        q_len = linear_len + sum(branch_lens)
        kv_len = self._cache_len + q_len
        query = torch.arange(q_len, device=device)
        key = torch.arange(kv_len, device=device) - self._cache_len
        branch_id = torch.zeros(q_len, dtype=torch.long, device=device)
        offset = linear_len
        for i, n in enumerate(branch_lens):
            branch_id[offset:offset + n] = i + 1
            offset += n
        key_branch = torch.cat([torch.zeros(self._cache_len, dtype=torch.long, device=device), branch_id])
        allowed = (key[None, :] <= query[:, None]) & ((key_branch[None, :] == 0) | (key_branch[None, :] == branch_id[:, None]))
        mask = torch.zeros(q_len, kv_len, dtype=dtype, device=device)
        mask.masked_fill_(~allowed, torch.finfo(dtype).min)
        return mask[None, None]
