"""JAX's persistent compilation cache: compiled programs kept on disk, so a second run of
the same configs (a CI job, a re-run of `archspec check`) reads them instead of compiling.

The folder: the `folder` argument, else $ARCHSPEC_CACHE_DIR, else
$XDG_CACHE_HOME/archspec/jax (~/.cache/archspec/jax). ARCHSPEC_NO_COMPILE_CACHE=1 turns it
off. Every program is cached, however small or quick to compile, so a second run of the
same configs compiles nothing. The folder is bounded (least recently used programs go first)
and, because it is bounded, JAX locks it for every read and write, so processes running side
by side (CI jobs, `parallel` sweep points) share it safely. The cache is trusted code: keep
the folder private to the user (or CI job) that runs archspec."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from archspec.cachedirs import folder, switched_off

ENV_FOLDER = "ARCHSPEC_CACHE_DIR"
ENV_OFF = "ARCHSPEC_NO_COMPILE_CACHE"
MAX_BYTES = 4 << 30   # a size limit turns on JAX's LRU eviction and its file lock
_HITS = "/jax/compilation_cache/cache_hits"
_WRITES = "/jax/compilation_cache/cache_misses"   # JAX counts a miss when it writes the entry
_SAVED = "/jax/compilation_cache/compile_time_saved_sec"
_COMPILE = "/jax/core/compile/backend_compile_duration"


@dataclass
class CacheStats:
    """What the cache did in this process since it was enabled."""

    folder: Path
    hits: int = 0              # programs read from the cache instead of compiled
    written: int = 0           # programs compiled and written to it
    saved_s: float = 0.0       # compile time the hits saved (as JAX measures it)
    compile_s: float = 0.0     # time spent compiling (misses, and programs never cached)

    def to_dict(self) -> dict:
        return {"folder": str(self.folder), "hits": self.hits, "written": self.written,
                "saved_s": round(self.saved_s, 3), "compile_s": round(self.compile_s, 3)}

    def describe(self) -> str:
        return (f"compilation cache {self.folder}: {self.hits} program(s) read "
                f"(~{self.saved_s:.1f} s of compiling saved), {self.written} compiled and "
                f"written")


_stats: CacheStats | None = None


def disabled_by_env() -> bool:
    return switched_off(ENV_OFF)


def default_folder() -> Path:
    return folder(ENV_FOLDER, "jax")


def enable_compilation_cache(folder: str | Path | None = None) -> CacheStats | None:
    """Turn the persistent cache on for this process (call it before the first compile;
    a later call moves the cache to the new folder). Returns the running counts, or None
    when ARCHSPEC_NO_COMPILE_CACHE is set or the folder cannot be made (then programs
    are compiled as usual: the cache only saves time, it never changes a result)."""
    global _stats
    if disabled_by_env():
        return None
    path = Path(folder).expanduser() if folder is not None else default_folder()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    _adopt_unbounded_entries(path)
    import jax
    from jax.experimental.compilation_cache import compilation_cache

    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    compilation_cache.reset_cache()  # a cache set up by an earlier compile reads the new folder
    if _stats is None:
        jax.monitoring.register_event_listener(_on_event)
        jax.monitoring.register_event_duration_secs_listener(_on_duration)
    _stats = CacheStats(path)
    return _stats


def _adopt_unbounded_entries(folder: Path) -> None:
    """Programs written without a size limit (by older archspec, or by JAX directly) have no
    access-time file, and JAX's eviction fails on them: give each one, dated now. Once per
    folder (a marker says it was done): after that JAX writes the file with every entry."""
    import time

    marker = folder / ".archspec-bounded"
    if marker.exists():
        return
    stamp = time.time_ns().to_bytes(8, "little")
    try:
        for entry in folder.glob("*-cache"):
            atime = entry.with_name(entry.name[:-len("-cache")] + "-atime")
            if not atime.exists():
                atime.write_bytes(stamp)
        marker.touch()
    except OSError:
        pass  # a read-only folder: JAX then warns per write, results are unchanged


def cache_entries(folder: str | Path) -> int:
    """How many compiled programs the folder holds."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    return sum(1 for p in folder.iterdir() if p.is_file() and p.name.endswith("-cache"))


def _on_event(event: str, **_) -> None:
    if _stats is None:
        return
    if event == _HITS:
        _stats.hits += 1
    elif event == _WRITES:
        _stats.written += 1


def _on_duration(event: str, duration: float, **_) -> None:
    if _stats is None:
        return
    if event == _SAVED:
        _stats.saved_s += max(float(duration), 0.0)
    elif event == _COMPILE:
        _stats.compile_s += float(duration)
