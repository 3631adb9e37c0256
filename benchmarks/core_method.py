"""What the core benchmark's report says of its method, below its tables (see `core`)."""

__all__ = ["FILE_COST", "FLOOR_METHOD", "METHOD"]

METHOD = (
    "Mock provider with no latency, concurrency 8, one attempt; 16x16 PNG items for overhead "
    "and memory, 1024x1024 JPEG with a 256 px thumbnail for stalls. Each run in a fresh process "
    "and a new workspace; all are removed after the last run, so that no run pays for the files "
    "of the one before it being removed (see `scenarios.scratch_folder`). Overhead = wall time "
    "of `run` / items. CPU per image is the CPU "
    "time during `run` / items of the process (all threads) and of the worker processes that "
    "store the images (their start included), in their own code and in the kernel: each image "
    "makes three files (raw with fsync, processed, thumbnail), and what making one costs the "
    "kernel depends on the file system and its recent history."
)
FLOOR_METHOD = (
    "The work alone: what the run does for each small image, one image after another in one "
    "thread with no orchestration (no event loop, threads, models, events, lease or cache "
    "index), by the functions the run calls: the mock's draws and drawing, the check, the raw "
    "file written durably, the processed image and the thumbnail, the cache's link, and a row "
    "in a SQLite table synced as the journal is, eight rows to a commit. Its wall time includes "
    "the disk's waits, which a run's concurrent slots overlap; its CPU time cannot be "
    "overlapped, only spread over the CPUs, so that time over the CPU count is the least any "
    "run of this work can take per image here, whatever its design (Python's GIL keeps the "
    "real figure well above it)."
)
FILE_COST = (
    "\n\nMaking a small file took {us:.0f} us of CPU in the runs' folder just before them. On the "
    "machine of `benchmarks/RESULTS.md` that is 15-70 us on a quiet disk and 100-400 us for "
    "minutes after many files were removed (a test run, a benchmark run that removed its "
    "files); every file a run makes costs as much more, and the figures above with it."
)
