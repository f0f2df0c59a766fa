"""The paper profile fenced off: the readers of the paper's data sets in their official layouts (`datasets`), the
profile's inputs to the shared stages (`inputs`: pairs, AudioSet, the PANNs file, streamed sources), the dry run
over a data root and the torchrun job lines. May import `config`, `data`, `models`, `training` and
`pipeline`'s input types / cache; never `report`. The default (gpvad) run needs nothing here but the AudioCaps /
Clotho caption readers."""
