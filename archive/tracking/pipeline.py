"""``track(policy)``: the one place that runs fetch → snapshot → extract → record in order.

Only a successful fetch whose extracted, normalised text differs from the last version is a
change. Failures are counted in state, never committed. A text far shorter than the last
version is held back as suspect until the next check confirms it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime

from archive.app import Archive
from archive.config import PolicyConfig
from archive.errors import ExtractError, FetchError
from archive.extract import EXTRACTOR_VERSION, extract_document, normalise
from archive.fetch import Fetched, Fetcher
from archive.fetch.browser import find_browser
from archive.tracking.events import PolicyFailing, PolicyRecovered, VersionRecorded
from archive.tracking.failed import FailedBodies, FailedPart
from store.git.repository import blob_sha, now_utc
from store.git.snapshots import Page
from store.git.versions import CHANGE, FIRST_RECORD, NewVersion, Version
from store.state import PolicyState, Validators

log = logging.getLogger(__name__)

FIRST, CHANGED, UNCHANGED, FAILED, SUSPECT, SKIPPED = (
    "first_record",
    "changed",
    "unchanged",
    "failed",
    "suspect",
    "skipped",
)


@dataclass(frozen=True)
class TrackResult:
    service: str
    type: str
    status: str
    reason: str | None = None
    version: Version | None = None
    transient: bool | None = None

    @property
    def recorded(self) -> bool:
        return self.status in (FIRST, CHANGED)


def text_hash(text: str) -> str:
    """The id state keeps for a text: its git blob id, so state compares with git directly."""
    return blob_sha(text.encode("utf-8"))


def masked(text: str, patterns: Sequence[str]) -> str:
    """``text`` without the spans a policy's ``ignore`` patterns match (for comparing only)."""
    for pattern in patterns:
        text = re.sub(pattern, "", text, flags=re.MULTILINE)
    return text


def body_hash(pages: Sequence[Page]) -> str:
    digest = hashlib.sha256()
    for page in pages:
        digest.update(page.url.encode() + b"\0" + page.content_type.encode() + b"\0")
        digest.update(hashlib.sha256(page.body).digest())
    return digest.hexdigest()


def browser_available(path: str) -> bool:
    """Whether pages marked js can be rendered (the same lookup as the fetcher's)."""
    try:
        find_browser(path)
    except FetchError:
        return False
    return True


def finish_text(markdown: str) -> str:
    """The text as stored: normalised, ending with one newline."""
    return normalise(markdown).strip() + "\n"


def error_page(exc: FetchError) -> list[FailedPart]:
    """The page a failed fetch received (an HTTP error page), if it kept one."""
    if not exc.body:
        return []
    return [FailedPart(exc.url or "", exc.content_type, exc.body)]


class Pipeline:
    """Tracks policies of one archive with one fetcher. Safe to call from several threads."""

    def __init__(
        self, archive: Archive, fetcher: Fetcher, clock: Callable[[], datetime] = now_utc
    ) -> None:
        self.archive = archive
        self.fetcher = fetcher
        self.clock = clock
        self.failed_bodies = FailedBodies.of(archive.config.data_dir)
        self._record_lock = threading.Lock()  # one commit + index update at a time
        self._batches = 0  # while a check() batch runs, the index is updated once at its end
        self._deferred = False  # run: the scheduler batches index updates itself
        self._pending = 0

    # ------------------------------------------------------------------ public

    def defer_index_updates(self) -> None:
        """From now on ``track`` never updates the search index itself: the caller (``run``'s
        scheduler) calls ``archive.sync_index()`` in batches, watching
        :attr:`pending_index_updates`."""
        with self._record_lock:
            self._deferred = True

    @property
    def pending_index_updates(self) -> int:
        """Changes recorded since the search index was last brought up to date."""
        return self._pending

    def sync_index(self) -> int:
        """Bring the search index up to git now; resets :attr:`pending_index_updates`."""
        with self._record_lock:
            self._pending = 0
        return self.archive.sync_index()

    def track(self, policy: PolicyConfig) -> TrackResult:
        """Check one policy. Whatever goes wrong inside is that policy's failure, never the
        end of the batch or of the scheduler: an unexpected error is logged with its
        traceback and recorded as ``internal error: …``."""
        try:
            return self._track(policy)
        except Exception as exc:  # a bug in one policy's fetch/extract/record: logged in full
            log.exception("%s: internal error while checking", policy.label)
            reason = f"internal error: {type(exc).__name__}: {exc}"
            try:
                state = self.archive.state.get(policy.service, policy.type)
                return self._failed(policy, state, self.clock(), reason, transient=False)
            except Exception:  # state itself is failing (disk full…): report, keep going
                log.exception("%s: could not record the failure in state", policy.label)
                return TrackResult(policy.service, policy.type, FAILED, reason, transient=False)

    def _track(self, policy: PolicyConfig) -> TrackResult:
        state = self.archive.state.get(policy.service, policy.type)
        now = self.clock()
        settings = self.archive.config.fetch
        if policy.js and not browser_available(settings.browser_path):
            reason = (
                "needs a browser (js = true): install Debian's chromium "
                "(apt-get install chromium) or set [fetch] browser_path"
            )
            self.archive.state.put(dataclasses.replace(state, last_check=now, last_error=reason))
            return TrackResult(policy.service, policy.type, SKIPPED, reason)
        try:
            fetched = [
                self._fetch(policy, source.url, source.js, state) for source in policy.sources
            ]
        except FetchError as exc:
            return self._failed(
                policy, state, now, exc.reason, exc.transient, parts=error_page(exc)
            )
        validators = tuple(Validators(f.url, f.etag, f.last_modified) for f in fetched)
        ok_state = dataclasses.replace(
            state,
            last_check=now,
            last_success=now,
            failures=0,
            last_error=None,
            last_error_transient=None,
            failing_since=None,
            validators=validators,
        )
        in_step = self._state_in_step(policy, state)
        if all(f.not_modified for f in fetched) and in_step:
            return self._unchanged(policy, state, ok_state)
        try:
            pages = self._pages(policy, fetched)
        except FetchError as exc:
            return self._failed(policy, state, now, exc.reason, exc.transient)
        raw_hash = body_hash(pages)
        if raw_hash == state.body_hash and in_step:
            return self._unchanged(policy, state, ok_state)
        try:
            text = self._extract(policy, pages)
        except ExtractError as exc:
            parts = [FailedPart(p.url, p.content_type, p.body) for p in pages]
            return self._failed(policy, state, now, str(exc), transient=False, parts=parts)
        return self._compare_and_record(policy, state, ok_state, pages, raw_hash, text, now)

    def check(
        self,
        policies: Iterable[PolicyConfig],
        *,
        workers: int | None = None,
        on_result: Callable[[TrackResult], None] | None = None,
    ) -> list[TrackResult]:
        """Track several policies concurrently; results in completion order.

        The search index is brought up to date once, when the batch ends (one index commit
        instead of one per change), before this returns."""
        policies = list(policies)
        results: list[TrackResult] = []
        workers = workers or self.archive.config.fetch.concurrency
        with self._record_lock:
            self._batches += 1
        try:
            with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
                futures = [pool.submit(self.track, p) for p in policies]
                for future in as_completed(futures):
                    result = future.result()
                    results.append(result)
                    if on_result:
                        on_result(result)
        finally:
            with self._record_lock:
                self._batches -= 1
            if any(r.recorded for r in results) and not self._deferred:
                self.sync_index()
        return results

    # ------------------------------------------------------------------ steps

    def _fetch(self, policy: PolicyConfig, url: str, js: bool, state: PolicyState) -> Fetched:
        validator = state.validator_for(url) if state.text_hash else None
        return self.fetcher.fetch(
            url,
            js=js,
            etag=validator.etag if validator else None,
            last_modified=validator.last_modified if validator else None,
        )

    def _pages(self, policy: PolicyConfig, fetched: Sequence[Fetched]) -> list[Page]:
        """Pages with bodies; a 304 page takes its bytes from the latest snapshot."""
        stored = None
        pages = []
        for i, f in enumerate(fetched):
            if f.not_modified:
                if stored is None:
                    stored = self.archive.snapshots.latest(policy.service, policy.type)
                if stored is None or i >= len(stored.pages):
                    raise FetchError(
                        f"{f.url} answered 304 Not Modified but no snapshot of it "
                        "is stored; it will be fetched in full next time",
                        transient=True,
                        url=f.url,
                    )
                pages.append(stored.pages[i])
            else:
                pages.append(
                    Page(url=f.final_url or f.url, body=f.body, content_type=f.content_type)
                )
        return pages

    def _extract(self, policy: PolicyConfig, pages: Sequence[Page]) -> str:
        pieces = [
            (source, page.body, page.content_type, page.url)
            for source, page in zip(policy.sources, pages, strict=True)
        ]
        text = finish_text(extract_document(pieces))
        minimum = self.archive.config.fetch.min_text_chars
        if len(text.strip()) < minimum:
            raise ExtractError(
                f"the extracted text has {len(text.strip())} characters, under the minimum of "
                f"{minimum}: the page is probably empty, an error page or not yet rendered "
                "(check the selectors, or set js = true)"
            )
        return text

    def _state_in_step(self, policy: PolicyConfig, state: PolicyState) -> bool:
        """Whether state's text id is the text git holds (the shortcuts that skip extraction
        are taken only then: state is a cache, git decides)."""
        if not state.text_hash:
            return False
        return state.text_hash == self.archive.versions.current_blob(policy.service, policy.type)

    def _compare_and_record(
        self,
        policy: PolicyConfig,
        state: PolicyState,
        ok_state: PolicyState,
        pages: Sequence[Page],
        raw_hash: str,
        text: str,
        now: datetime,
    ) -> TrackResult:
        """Git decides: the new text's blob id against the blob in HEAD's tree."""
        new_id = text_hash(text)
        versions = self.archive.versions
        head_id = versions.current_blob(policy.service, policy.type)
        if head_id is not None:
            if new_id == head_id:
                return self._unchanged(
                    policy,
                    state,
                    dataclasses.replace(ok_state, body_hash=raw_hash, text_hash=new_id),
                )
            current_text = versions.current_text(policy.service, policy.type) or ""
            if policy.ignore and masked(text, policy.ignore) == masked(current_text, policy.ignore):
                return self._unchanged(  # only ignored spans differ: keep the stored text
                    policy,
                    state,
                    dataclasses.replace(ok_state, body_hash=raw_hash, text_hash=head_id),
                )
            ratio = self.archive.config.fetch.suspect_ratio
            if len(text) < ratio * len(current_text) and state.suspect_hash != new_id:
                reason = (
                    f"the new text is {len(text) * 100 // max(1, len(current_text))}% "
                    "of the last version's length; held back until the next check "
                    "confirms it"
                )
                self.archive.state.put(
                    dataclasses.replace(
                        ok_state,
                        body_hash=None,
                        text_hash=head_id,
                        suspect_hash=new_id,
                        suspect_since=now,
                    )
                )
                self._forget_failed_fetch(policy, state)
                return TrackResult(policy.service, policy.type, SUSPECT, reason)
        previous = versions.current(policy.service, policy.type) if head_id else None
        # The snapshot repository has its own lock: its commit does not wait for other
        # policies' version commits, and a kill between the two is repaired by the next
        # check (git still holds the old text, so the change is found and recorded again).
        snapshot = self.archive.snapshots.record(policy.service, policy.type, pages, now)
        version = versions.record(
            NewVersion(
                service=policy.service,
                type=policy.type,
                text=text,
                date=now,
                kind=FIRST_RECORD if head_id is None else CHANGE,
                urls=tuple(p.url for p in pages),
                snapshot=snapshot,
                content_type=pages[0].content_type
                if len(pages) == 1
                else ", ".join(p.content_type for p in pages),
                extractor_version=EXTRACTOR_VERSION,
                fetched_at=now,
            )
        )
        if version is None:  # HEAD already holds this text (git decides)
            return self._unchanged(
                policy, state, dataclasses.replace(ok_state, body_hash=raw_hash, text_hash=new_id)
            )
        self.archive.state.put(
            dataclasses.replace(
                ok_state,
                body_hash=raw_hash,
                text_hash=new_id,
                last_change=now,
                suspect_hash=None,
                suspect_since=None,
            )
        )
        with self._record_lock:
            self._pending += 1
            sync_now = not self._batches and not self._deferred
        if sync_now:
            self.sync_index()
        self._recovered(policy, state)
        self.archive.events.emit(VersionRecorded(version=version, previous=previous, policy=policy))
        return TrackResult(
            policy.service, policy.type, FIRST if head_id is None else CHANGED, version=version
        )

    # ------------------------------------------------------------------ outcomes

    def _unchanged(self, policy: PolicyConfig, old: PolicyState, new: PolicyState) -> TrackResult:
        self.archive.state.put(dataclasses.replace(new, suspect_hash=None, suspect_since=None))
        self._recovered(policy, old)
        return TrackResult(policy.service, policy.type, UNCHANGED)

    def _recovered(self, policy: PolicyConfig, old: PolicyState) -> None:
        self._forget_failed_fetch(policy, old)
        if old.failures >= self.archive.config.schedule.failure_alert_after:
            self.archive.events.emit(PolicyRecovered(policy.service, policy.type, old.failures))

    def _forget_failed_fetch(self, policy: PolicyConfig, old: PolicyState) -> None:
        """A policy fetched again no longer needs the page of its last failure."""
        if old.failures:
            try:
                self.failed_bodies.forget(policy.service, policy.type)
            except OSError as exc:
                log.warning("%s: could not remove its last failed fetch: %s", policy.label, exc)

    def _failed(
        self,
        policy: PolicyConfig,
        state: PolicyState,
        now: datetime,
        reason: str,
        transient: bool,
        *,
        parts: Sequence[FailedPart] = (),
    ) -> TrackResult:
        """Count a failed check; keep what the site answered (``parts``), if anything."""
        failures = state.failures + 1
        since = state.failing_since if state.failures else now  # None: began before it was kept
        self.archive.state.put(
            dataclasses.replace(
                state,
                last_check=now,
                failures=failures,
                last_error=reason,
                last_error_transient=transient,
                failing_since=since,
            )
        )
        if parts:
            try:
                self.failed_bodies.keep(policy.service, policy.type, parts, at=now, reason=reason)
            except OSError as exc:  # evidence only: the failure is counted all the same
                log.warning("%s: could not keep the failed fetch: %s", policy.label, exc)
        log.info("%s: check failed (%d in a row): %s", policy.label, failures, reason)
        if failures == self.archive.config.schedule.failure_alert_after:
            self.archive.events.emit(
                PolicyFailing(policy.service, policy.type, failures, reason, transient)
            )
        return TrackResult(policy.service, policy.type, FAILED, reason, transient=transient)
