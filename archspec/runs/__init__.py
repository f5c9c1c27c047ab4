"""Run folders: making one, owning it (a lock), writing inside it (never through a link), its
records (metrics, attempts, best), its set-up files (config, sources, env), checkpoints, and
listing runs."""
