"""Fitting the models: the one CLAP trainer and the supervised backbone pretrainer, verified per-epoch checkpoints,
cached / streamed (audio, caption) pair sources, and the data-parallel primitives (`distributed`: World, seeding,
DDP wrapping) both trainers run on. May import `config`, `data`, `models` and `io`; never `pipeline`, `analysis` or
`report`."""
