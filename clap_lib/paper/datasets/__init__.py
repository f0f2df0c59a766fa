"""The paper's training data sets, read from their official release layouts, and a dry run over them.

The paper trains CLAP on the (audio, caption) pairs of Clotho, AudioCaps, FSD50K and MACS, pretrains
the audio encoder on AudioSet, and evaluates zero-shot on ESC-50. None of the caption audio can be
fetched on the project's machines, so every reader here can also run on captions alone
(``require_audio=False``) and :func:`clap_lib.paper.dry_run.dry_run_report` says what is present, what is missing and where
it looked, without training or loading any model.

Every caption reader returns one row per (audio, caption) pair with at least the columns of
:data:`PAIR_COLUMNS`: ``dataset, split, audio_id, audio_path, audio_exists, caption``.
``audio_path`` is where the audio file is (or, when absent, where the primary convention expects it);
``audio_exists`` says whether it is there. With ``require_audio=True`` (the default) any missing audio
file is an error that counts and names the missing files; with ``require_audio=False`` the rows stay in
the table with ``audio_exists=False`` so the caller sees them (they are never silently dropped).

Modules (one job each): :mod:`.clotho`, :mod:`.audiocaps`, :mod:`.fsd50k`, :mod:`.macs` and :mod:`.audioset`
read one data set each (its accepted layout is in the module's docstring; ESC-50 is read by
:func:`clap_lib.data.esc50.read_esc50_meta`); :mod:`.common` holds the checks they share; :mod:`.roots` says where
each data set lives and where to get it; :mod:`.paper_set` builds the paper training set; :mod:`clap_lib.paper.dry_run`
reports what is present; :mod:`.download` fetches the official files. Every public name is re-exported here.

Training set and cleaning
-------------------------
:func:`paper_training_set` is the union of the four caption data sets over :data:`TRAINING_SPLITS`:
every split except the benchmark test splits (Clotho evaluation, AudioCaps test, FSD50K eval), which
stay unseen. The validation pairs are then drawn by :func:`split_pairs_validation`, grouped by audio
file so no audio is in both parts. :func:`clean_pairs` applies the project's leakage filter
(:mod:`clap_lib.data.filtering`) with all 50 ESC-50 class names; :func:`audioset_classes_removed` and
:func:`clean_audioset_segments` do the same for AudioSet class names and segments.
"""

from __future__ import annotations

from clap_lib.paper.datasets.audiocaps import AUDIOCAPS_SPLITS, read_audiocaps
from clap_lib.paper.datasets.audioset import (
    AUDIOSET_SPLITS,
    audioset_classes_removed,
    clean_audioset_segments,
    read_audioset_class_labels,
    read_audioset_segments,
    read_ontology,
)
from clap_lib.paper.datasets.clotho import CLOTHO_SPLITS, read_clotho
from clap_lib.paper.datasets.common import PAIR_COLUMNS
from clap_lib.paper.datasets.download import DOWNLOADS, download
from clap_lib.paper.datasets.fsd50k import FSD50K_SPLITS, read_fsd50k
from clap_lib.paper.datasets.macs import MACS_SPLIT, read_macs
from clap_lib.paper.datasets.paper_set import (
    TRAINING_SPLITS,
    clean_pairs,
    filter_pairs,
    paper_training_set,
    read_caption_dataset,
    split_pairs_validation,
)
from clap_lib.paper.datasets.roots import ALL_DATASETS, CAPTION_DATASETS, LANDING_PAGES, ROOT_ENV, default_roots

__all__ = [
    "PAIR_COLUMNS",
    "CAPTION_DATASETS",
    "ALL_DATASETS",
    "TRAINING_SPLITS",
    "ROOT_ENV",
    "DOWNLOADS",
    "LANDING_PAGES",
    "CLOTHO_SPLITS",
    "AUDIOCAPS_SPLITS",
    "FSD50K_SPLITS",
    "MACS_SPLIT",
    "AUDIOSET_SPLITS",
    "read_clotho",
    "read_audiocaps",
    "read_fsd50k",
    "read_macs",
    "read_caption_dataset",
    "read_audioset_segments",
    "read_audioset_class_labels",
    "read_ontology",
    "audioset_classes_removed",
    "clean_audioset_segments",
    "paper_training_set",
    "split_pairs_validation",
    "filter_pairs",
    "clean_pairs",
    "default_roots",
    "download",
]
