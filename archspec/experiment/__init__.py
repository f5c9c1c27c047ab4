"""What a user writes: the experiment schema and `--set`, `expect:`, sweep files, and the one
way to load an experiment, a bare architecture or a run folder's config."""
