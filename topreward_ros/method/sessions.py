"""Streaming TOPReward for many episodes at once: a pool of sessions scored in one forward.

A session is one growing episode: its frames, its pairs' cached vision features and its own
language KV cache. Each complete pair of frames is encoded once by the ViT (with its DeepStack
levels) and appended once to the session's cache, at the exact 3-D MRoPE positions of the full
sequence. An update of a session runs only its new pair(s), the closing token and the prompts:
the prompts are branches that all see the shared prefix but not each other.

``SessionPool.score`` updates any number of sessions together: one ViT call for every new pair
of every session, and one language-model forward whose rows are the sessions, right-padded,
each with its own cache length, MRoPE positions and branch mask. The caches of the rows are
laid side by side (padded to the longest) for that forward, and each row's committed tokens
are appended back to its own session, so sessions stay independent: they open, grow, reset,
subsample and close on their own, and closing one frees its memory. A pool of one session
scores in place, with no copy (``StreamingEngine`` is that case).

An odd last frame is scored as the pair (frame, frame), the way the processor pads a video,
but never committed: it changes when its partner arrives.

Long episodes: when more than ``max_frames`` frames are kept, every other frame is dropped
(the first frame always stays), the frame stride doubles (only every ``stride``-th added frame
is kept from then on) and the session's cache is rebuilt once from the kept frames
(max_frames is even, so the newest frame stays too). A session's memory is bounded by
``max_frames``; each update reports the stride and whether it rebuilt. Scores always equal
the full recompute over the kept frames.
"""

from __future__ import annotations

from ..errors import TopRewardError

import dataclasses
import functools
import math
import time
from collections.abc import Mapping

import numpy as np
import torch
from transformers import DynamicCache

from .frames import FrameError, FramePair, pair_frames, resize_frame
from .prompts import fill_prompt
from .rendering import VIDEO, Renderer, Segment
from .config import DEFAULT_MAX_FRAMES, ScoringConfig
from .scoring import Score, answer_logprobs, make_score
from .vision import GroupFeatures, encode_pairs, rope_index

DEFAULT_CAPACITY = 16    # sessions a pool holds at once
_PROMPT_CACHE_SIZE = 256  # rendered prompt sets kept (one per task)


def session_cache_bytes(text_config, resolution: tuple[int, int], max_frames: int, dtype: torch.dtype) -> int:
    """The KV cache of a session holding ``max_frames`` frames, approximately (a pair's vision tokens plus
    about ten for its timestamp and markers, and a hundred for the prefix and prompts)."""
    width, height = resolution
    tokens = (max_frames // 2) * (width * height // 1024 + 10) + 100
    per_token = (2 * text_config.num_hidden_layers * text_config.num_key_value_heads * text_config.head_dim
                 * torch.empty((), dtype=dtype).element_size())
    return tokens * per_token


class SessionError(TopRewardError, ValueError):
    """An unknown or closed session, or a pool at capacity."""


@dataclasses.dataclass(frozen=True)
class Update:
    """One reward update: the score of the episode so far and what it cost."""

    score: Score
    num_frames: int          # frames in the scored prefix (after any subsampling)
    frame_time: float        # time of the newest frame (seconds)
    new_tokens: int          # tokens run through the language model in this update
    cached_tokens: int       # committed prefix length in the KV cache after the update
    vision_ms: float         # shared by the sessions of one pool update
    language_ms: float
    total_ms: float
    stride: int              # keep 1 of every `stride` added frames (long-episode policy)
    rebuilt: bool            # this update rebuilt the cache after subsampling


class Session:
    """One episode's frames and caches. Read its state; change it through its pool."""

    def __init__(self, text_config):
        self._text_config = text_config
        self.reset()

    def reset(self) -> None:
        self.frames: list[np.ndarray] = []
        self.times: list[float] = []
        self.stride = 1
        self._added = 0
        self.clear_cache()

    def clear_cache(self) -> None:
        """Drop the KV cache and vision features, keep the frames: the next update rebuilds them."""
        self.cache = DynamicCache(config=self._text_config)
        self.cache_len = 0
        self.next_position = 0
        self.committed_pairs = 0
        self.tail: GroupFeatures | None = None
        self.rebuilt = False

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    def add_frame(self, frame: np.ndarray, timestamp: float, resolution: tuple[int, int], max_frames: int) -> bool:
        if not math.isfinite(timestamp):
            raise FrameError(f"frame time {timestamp} is not a finite number of seconds")
        if self.times and timestamp < self.times[-1]:
            raise FrameError(f"frame time {timestamp} is earlier than the previous frame ({self.times[-1]})")
        frame = resize_frame(frame, resolution)  # checks shape and dtype before anything changes
        keep = self._added % self.stride == 0
        self._added += 1
        if not keep:
            return False
        self.frames.append(frame)
        self.times.append(float(timestamp))
        self.tail = None
        if len(self.frames) > max_frames:
            # Kept frames are the added frames 0, s, 2s, ...; with max_frames even the newest one
            # stays, and from now on the added frames 0, 2s, 4s, ... are kept.
            self.frames = self.frames[::2]
            self.times = self.times[::2]
            self.stride *= 2
            self.clear_cache()
            self.rebuilt = True
        return True


@dataclasses.dataclass
class _Row:
    """One session's part of a pool update (its token lists are built once: the forward reads them often)."""

    session: Session
    committed: Segment            # appended to the session's cache for good
    shared: Segment               # odd tail pair and the closing token, seen by every prompt
    groups: list[GroupFeatures]   # vision features of committed + shared, in token order
    prompts: list[Segment]
    positions: torch.Tensor = dataclasses.field(init=False)  # (3, n) MRoPE ids of linear + branches, set once built

    @functools.cached_property
    def linear(self) -> Segment:
        return self.committed + self.shared

    @functools.cached_property
    def ids(self) -> list[int]:
        return self.linear.ids + [i for p in self.prompts for i in p.ids]

    @functools.cached_property
    def types(self) -> list[int]:
        return self.linear.types + [t for p in self.prompts for t in p.types]


class SessionPool:
    """Up to ``capacity`` sessions of one model and scoring config, updated together.

    Not thread-safe: one pool per thread (Qwen3-VL keeps rope state on the model).
    """

    def __init__(self, reward_model, config: ScoringConfig, max_frames: int = DEFAULT_MAX_FRAMES,
                 capacity: int = DEFAULT_CAPACITY):
        if max_frames < 4 or max_frames % 2:
            raise ValueError(f"max_frames must be an even number of at least 4, got {max_frames}")
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.reward_model = reward_model
        self.config = config
        self.max_frames = max_frames
        self.capacity = capacity
        self.renderer = Renderer(reward_model.tokenizer, role_markers=config.role_markers)
        self._text_config = reward_model.model.model.config.text_config
        self._sessions: dict[int, Session] = {}
        self._opened = 0  # sessions ever opened: ids are 0, 1, 2, ...
        self._prompt_cache: dict[str, list[Segment]] = {}

    # -- sessions ------------------------------------------------------------------------
    def open(self) -> int:
        """A new empty session's id; a SessionError when the pool is full."""
        if len(self._sessions) >= self.capacity:
            raise SessionError(f"the session pool is full ({self.capacity} sessions): close one first")
        session_id = self._opened
        self._opened += 1
        self._sessions[session_id] = Session(self._text_config)
        return session_id

    def close(self, session_id: int) -> None:
        """Forget the session and free its frames and caches."""
        self.session(session_id)
        del self._sessions[session_id]

    def session(self, session_id: int) -> Session:
        try:
            return self._sessions[session_id]
        except (KeyError, TypeError):
            closed = isinstance(session_id, int) and 0 <= session_id < self._opened
            raise SessionError(f"session {session_id!r} {'is closed' if closed else 'does not exist'}") from None

    @property
    def session_ids(self) -> list[int]:
        return list(self._sessions)

    def __len__(self) -> int:
        return len(self._sessions)

    def reset(self, session_id: int) -> None:
        """Start a new episode in the session (its frames and caches are dropped)."""
        self.session(session_id).reset()

    def invalidate(self, session_id: int) -> None:
        """Drop the session's caches but keep its frames: its next update rebuilds them."""
        self.session(session_id).clear_cache()

    def add_frame(self, session_id: int, frame: np.ndarray, timestamp: float) -> bool:
        """Add an RGB frame taken at ``timestamp`` seconds. Returns False if the stride skips it.
        A bad frame raises FrameError and leaves the session as it was."""
        return self.session(session_id).add_frame(frame, timestamp, self.config.resolution, self.max_frames)

    # -- scoring ------------------------------------------------------------------------
    def _prompts(self, task: str) -> list[Segment]:
        if task not in self._prompt_cache:
            if len(self._prompt_cache) >= _PROMPT_CACHE_SIZE:
                self._prompt_cache.clear()
            self._prompt_cache[task] = [self.renderer.prompt(fill_prompt(t, task)) for t in self.config.prompts]
        return self._prompt_cache[task]

    def check_task(self, task: str) -> str:
        """The stripped task if every prompt renders with it; else a PromptError or RenderError.
        Touches no session, so another thread may call it while this one scores."""
        for template in self.config.prompts:
            self.renderer.prompt(fill_prompt(template, task))
        return task.strip()

    @torch.inference_mode()
    def score(self, tasks: Mapping[int, str]) -> dict[int, Update]:
        """Score each given session's episode so far for its task, all in one forward.

        Everything is checked before any session changes: an unknown or closed session, one
        without frames or a task that cannot be rendered raises and leaves every session as it
        was. If the forward itself fails, the caches of the sessions in it are dropped (their
        frames stay) and their next update rebuilds them exactly.
        """
        sessions = {session_id: self.session(session_id) for session_id in tasks}
        for session_id, session in sessions.items():
            if not session.frames:
                raise FrameError(f"session {session_id} has no frames yet")
        prompts = {session_id: self._prompts(task) for session_id, task in tasks.items()}
        if not sessions:
            return {}
        try:
            return self._score(sessions, prompts)
        except BaseException:
            for session in sessions.values():
                session.clear_cache()
            raise

    def _score(self, sessions: dict[int, Session], prompts: dict[int, list[Segment]]) -> dict[int, Update]:
        start = time.perf_counter()
        pairs: list[FramePair] = []
        plans: list[tuple[int, int, bool]] = []  # (offset in pairs, new pairs, has a tail pair) per session
        for session in sessions.values():
            complete = len(session.frames) // 2
            first, stop = 2 * session.committed_pairs, 2 * complete
            new = (pair_frames(session.frames[first:stop], session.times[first:stop])
                   if complete > session.committed_pairs else [])
            tail = (pair_frames(session.frames[-1:], session.times[-1:])
                    if len(session.frames) % 2 and session.tail is None else [])
            plans.append((len(pairs), len(new), bool(tail)))
            pairs += new + tail
        features = encode_pairs(self.reward_model, pairs)  # one ViT call for every session
        vision_done = time.perf_counter()

        rows = []
        for (offset, num_new, has_tail), session, row_prompts in zip(plans, sessions.values(), prompts.values()):
            groups = features[offset:offset + num_new]
            if has_tail:
                session.tail = features[offset + num_new]
            committed = self.renderer.groups((g.timestamp, g.num_tokens) for g in groups)
            if session.cache_len == 0:
                committed = self.renderer.prefix() + committed
            shared = Segment([], [])
            if len(session.frames) % 2:
                last = session.tail
                assert last is not None  # encoded above, or by the update that first saw this odd frame
                shared = self.renderer.group(last.timestamp, last.num_tokens)
                groups = groups + [last]
            row = _Row(session, committed, shared + self.renderer.close_video(), groups, row_prompts)
            row.positions = self._positions(row)
            rows.append(row)
        logprobs = self._forward(rows)
        end = time.perf_counter()

        updates = {}
        for session_id, row, row_logprobs in zip(sessions, rows, logprobs):
            session = row.session
            session.committed_pairs = len(session.frames) // 2
            rebuilt, session.rebuilt = session.rebuilt, False
            updates[session_id] = Update(
                score=make_score(row_logprobs, self.config.contrastive), num_frames=len(session.frames),
                frame_time=session.times[-1], new_tokens=len(row.ids), cached_tokens=session.cache_len,
                vision_ms=(vision_done - start) * 1e3, language_ms=(end - vision_done) * 1e3,
                total_ms=(end - start) * 1e3, stride=session.stride, rebuilt=rebuilt)
        return updates

    def _positions(self, row: _Row) -> torch.Tensor:
        """3-D MRoPE ids: the model's get_rope_index over the new segment, offset to its place in the
        full sequence (the ids are translation invariant); each prompt branch starts at the same place."""
        device = self.reward_model.device
        linear = row.linear
        grids = torch.cat([g.grid_thw for g in row.groups]) if row.groups else None
        linear_pos = rope_index(self.reward_model.model.model, torch.tensor([linear.ids], device=device),
                                torch.tensor([linear.types], device=device), grids)[:, 0]
        linear_pos = linear_pos + row.session.next_position
        branch_start = int(linear_pos.max()) + 1
        branches = torch.cat([torch.arange(len(p), device=device) + branch_start for p in row.prompts])
        return torch.cat([linear_pos, branches.to(linear_pos.dtype).expand(3, -1)], dim=1)

    def _forward(self, rows: list[_Row]) -> list[torch.Tensor]:
        """One language-model forward over every row; commits each row's tokens to its session.
        Returns each row's (prompts, 2) log-probs of [" True", " False"]."""
        model = self.reward_model.model.model
        device = self.reward_model.device
        lengths = [len(row.ids) for row in rows]
        width = max(lengths)
        ids = torch.zeros((len(rows), width), dtype=torch.long, device=device)
        visual = torch.zeros((len(rows), width), dtype=torch.bool, device=device)
        positions = torch.zeros((3, len(rows), width), dtype=rows[0].positions.dtype, device=device)
        for i, row in enumerate(rows):
            ids[i, :lengths[i]] = torch.tensor(row.ids, device=device)
            visual[i, :lengths[i]] = torch.tensor([t == VIDEO for t in row.types], device=device)
            positions[:, i, :lengths[i]] = row.positions
        embeds = model.get_input_embeddings()(ids)
        groups = [g for row in rows for g in row.groups]  # row-major, as visual selects them
        deepstack = None
        if groups:
            embeds[visual] = torch.cat([g.embeds for g in groups]).to(embeds.dtype)
            deepstack = [torch.cat(level) for level in zip(*(g.deepstack for g in groups))]

        if len(rows) == 1:  # in place: the session's own cache, cropped back after
            cache, past = rows[0].session.cache, rows[0].session.cache_len
        else:
            cache, past = self._side_by_side(rows), max(row.session.cache_len for row in rows)
        single_branch = len(rows) == 1 and len(rows[0].prompts) == 1
        mask = None if single_branch else self._mask(rows, past, width, embeds.dtype)
        output = model.language_model(
            inputs_embeds=embeds, position_ids=positions, attention_mask=mask, past_key_values=cache,
            use_cache=True, visual_pos_masks=visual if groups else None, deepstack_visual_embeds=deepstack)

        ends = [(i, int(e)) for i, row in enumerate(rows)
                for e in np.cumsum([len(p) for p in row.prompts]) + len(row.linear) - 1]
        hidden = output.last_hidden_state[[i for i, _ in ends], [e for _, e in ends]]
        logprobs = answer_logprobs(self.reward_model, hidden)  # one float32 projection for all rows

        if len(rows) == 1:
            cache.crop(-(width - len(rows[0].committed)))
        else:
            self._commit(rows, cache, past)
        for row in rows:
            session = row.session
            session.cache_len += len(row.committed)
            if len(row.committed):
                session.next_position = int(row.positions[:, :len(row.committed)].max()) + 1
        return list(torch.split(logprobs, [len(row.prompts) for row in rows]))

    def _side_by_side(self, rows: list[_Row]) -> DynamicCache:
        """The rows' caches as one batch, each right-padded to the longest (the mask hides the padding)."""
        past = max(row.session.cache_len for row in rows)
        cache = DynamicCache(config=self._text_config)
        if past == 0:
            return cache
        reference = next(row.session.cache for row in rows if row.session.cache_len)
        for layer in range(self._text_config.num_hidden_layers):
            like = reference.layers[layer].keys
            keys, values = [], []
            for row in rows:
                if row.session.cache_len:
                    own = row.session.cache.layers[layer]
                    k, v = own.keys, own.values
                else:
                    k = v = like.new_zeros((1, like.shape[1], 0, like.shape[3]))
                padding = (0, 0, 0, past - k.shape[2])
                keys.append(torch.nn.functional.pad(k, padding))
                values.append(torch.nn.functional.pad(v, padding))
            cache.update(torch.cat(keys), torch.cat(values), layer)
        return cache

    def _commit(self, rows: list[_Row], cache: DynamicCache, past: int) -> None:
        """Append each row's committed tokens, written after the padded past, to its own session's cache."""
        for layer in range(self._text_config.num_hidden_layers):
            batch = cache.layers[layer]
            for i, row in enumerate(rows):
                n = len(row.committed)
                if n:
                    row.session.cache.update(batch.keys[i:i + 1, :, past:past + n],
                                             batch.values[i:i + 1, :, past:past + n], layer)

    def _mask(self, rows: list[_Row], past: int, width: int, dtype: torch.dtype) -> torch.Tensor:
        """Additive (rows, 1, width, past + width) mask. A row's queries see its own cached tokens,
        the new tokens causally, and of the prompt branches only their own; padding sees only itself."""
        device = self.reward_model.device
        query = torch.arange(width, device=device)
        allowed = torch.zeros((len(rows), width, past + width), dtype=torch.bool, device=device)
        for i, row in enumerate(rows):
            length = len(row.ids)
            branch = torch.zeros(width, dtype=torch.long, device=device)
            offset = len(row.linear)
            for b, prompt in enumerate(row.prompts, start=1):
                branch[offset:offset + len(prompt)] = b
                offset += len(prompt)
            new = ((query[None, :] <= query[:, None]) & (query[None, :] < length)
                   & ((branch[None, :] == 0) | (branch[None, :] == branch[:, None])))
            allowed[i, :length, past:] = new[:length]
            allowed[i, :length, :row.session.cache_len] = True
            allowed[i, length:, past + length:] = torch.eye(width - length, dtype=torch.bool, device=device)
        mask = torch.zeros(allowed.shape, dtype=dtype, device=device)
        mask.masked_fill_(~allowed, torch.finfo(dtype).min)
        return mask[:, None]
