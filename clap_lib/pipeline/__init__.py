"""The one stage graph of every profile (features -> backbone -> text -> clap -> grid): the stage cache (keys,
locks, manifests), the ESC-50 inputs, the stages and the grid runner, the grid-stage evaluation, and reading a
finished grid back (`results`). May import every package below it (`config`, `data`, `models`, `training`,
`analysis`) and the paper profile's inputs (`paper.inputs`); never `report`."""
