"""Configuration: every setting of a run as typed frozen dataclasses, the profiles (gpvad = the defaults, lab and
paper as overrides), the one `--set` / papermill parser, and the axis names (`levels`). Torch-free; imports
nothing from clap_lib except `data.esc50` (the class list and the T/B split)."""
