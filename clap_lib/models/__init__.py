"""The networks: audio backbones behind one interface (`backbones`: CNN14, the GPVAD CRNN), the log-mel front ends,
the text encoder, CLAP (projectors + the two encoders) and the CLIP loss. May import `config`, `data` and `io`;
never `training`, `pipeline`, `analysis` or `report`."""
