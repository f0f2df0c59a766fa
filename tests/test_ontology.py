"""The AudioSet ontology reader and the ESC-50 -> AudioSet mapping."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from clap_lib.data.esc50 import ESC50_CLASSES
from clap_lib.data.ontology import (
    ESC50_AUDIOSET,
    ESC50_UNMAPPED,
    ONTOLOGY_ENV,
    descendants,
    esc50_audioset_names,
    esc50_audioset_reasons,
    label_key,
    load_ontology,
)
from clap_lib.data.paths import shared_data_dir

SHARED = shared_data_dir()
REAL_ONTOLOGY = SHARED / "audioset" / "ontology.json" if SHARED else None
GPV_LABELS = SHARED / "gpvad" / "gpv_f_labels.csv" if SHARED else None
needs_ontology = pytest.mark.skipif(
    REAL_ONTOLOGY is None or not REAL_ONTOLOGY.is_file(), reason=f"AudioSet ontology not present at {REAL_ONTOLOGY}"
)

# a small DAG: Animal -> {Dog -> {Bark, Growling}, Cat -> {Growling, Purr}}
TINY = [
    {"id": "/a", "name": "Animal", "child_ids": ["/d", "/c"], "restrictions": ["abstract"]},
    {"id": "/d", "name": "Dog", "child_ids": ["/b", "/g"]},
    {"id": "/c", "name": "Cat", "child_ids": ["/g", "/p"]},
    {"id": "/b", "name": "Bark", "child_ids": []},
    {"id": "/g", "name": "Growling", "child_ids": []},
    {"id": "/p", "name": "Purr", "child_ids": []},
]


@pytest.fixture()
def tiny(tmp_path):
    p = tmp_path / "ontology.json"
    p.write_text(json.dumps(TINY))
    return p


def test_tiny_lookups_children_and_dag_descendants(tiny):
    onto = load_ontology(tiny)
    assert onto.names == ("Animal", "Dog", "Cat", "Bark", "Growling", "Purr")
    assert onto.get("/d").name == "Dog" and onto.get("Dog").id == "/d"
    assert [c.name for c in onto.children("Cat")] == ["Growling", "Purr"]
    assert [c.name for c in onto.parents("Growling")] == ["Dog", "Cat"]
    assert onto.by_name["Animal"].restrictions == ("abstract",)
    # Growling is reached twice but listed once, depth-first order
    assert [onto.by_id[i].name for i in descendants(onto, "Animal")] == ["Dog", "Bark", "Growling", "Cat", "Purr"]
    assert descendants(onto, "/b") == ()
    with pytest.raises(KeyError, match="Wolf"):
        onto.get("Wolf")


def test_path_folder_env_and_errors(tiny, tmp_path, monkeypatch):
    assert len(load_ontology(tmp_path).classes) == 6  # the folder holding ontology.json
    monkeypatch.setenv(ONTOLOGY_ENV, str(tiny))
    assert load_ontology().path == str(tiny)
    monkeypatch.setenv(ONTOLOGY_ENV, str(tmp_path / "nope.json"))
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_ontology()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"name": "Dog"}]))
    with pytest.raises(ValueError, match="id"):
        load_ontology(bad)
    bad.write_text(json.dumps([{"id": "/d", "name": "Dog", "child_ids": ["/zz"]}]))
    with pytest.raises(ValueError, match="/zz"):
        load_ontology(bad)


def test_normalise_label_spellings():
    assert label_key("Baby cry, infant cry") == label_key("Baby_cry_infant_cry") == "baby_cry_infant_cry"
    assert label_key("Fire engine, fire truck (siren)") == "fire_engine_fire_truck_(siren)"
    assert label_key("Bee, wasp, etc.") == label_key("Bee_wasp_etc.")
    assert label_key("Dog") != label_key("Dogs")


def test_mapping_rules():
    names = esc50_audioset_names()
    assert list(names) == list(ESC50_CLASSES)
    used = [n for v in names.values() for n in v]
    assert len(used) == len(set(used)), "an AudioSet class is mapped to two ESC-50 classes"
    assert (
        set(ESC50_UNMAPPED)
        == {c for c, v in names.items() if not v}
        == {"drinking_sipping", "can_opening", "washing_machine"}
    )
    assert all(esc50_audioset_reasons()[c] for c in ESC50_CLASSES)
    # the choices the brief fixes
    assert {"Dog", "Bark", "Bow-wow"} <= set(names["dog"])
    assert names["mouse_click"] == ("Clicking",) and "Mouse" not in used
    assert names["crying_baby"] == ("Baby cry, infant cry",)
    assert set(ESC50_AUDIOSET) == set(ESC50_CLASSES)


@needs_ontology
def test_every_mapped_name_is_in_the_real_ontology():
    onto = load_ontology(REAL_ONTOLOGY)
    assert len(onto.classes) == 632
    missing = [n for v in esc50_audioset_names().values() for n in v if n not in onto.by_name]
    assert missing == []
    # a mapped class's descendants never belong to another ESC-50 class's mapped set, except through the
    # DAG's shared children named below (listed so that a change to the mapping is a conscious one)
    owner = {n: c for c, v in esc50_audioset_names().items() for n in v}
    crossings = set()
    for cls, v in esc50_audioset_names().items():
        for n in v:
            for d in descendants(onto, n):
                other = owner.get(onto.by_id[d].name)
                if other not in (None, cls):
                    crossings.add((n, onto.by_id[d].name, other))
    assert crossings == {
        ("Chicken, rooster", "Crowing, cock-a-doodle-doo", "rooster"),
        ("Cat", "Growling", "dog"),
        ("Bird", "Crow", "crow"),
        ("Bird", "Caw", "crow"),
        ("Door", "Knock", "door_wood_knock"),
        ("Door", "Tap", "door_wood_knock"),
        ("Engine", "Chainsaw", "chainsaw"),
        ("Aircraft", "Helicopter", "helicopter"),
        ("Clicking", "Tick", "clock_tick"),
        ("Breathing", "Snoring", "snoring"),
        ("Light engine (high frequency)", "Chainsaw", "chainsaw"),
        ("Insect", "Cricket", "crickets"),
        ("Engine", "Jet engine", "airplane"),
    }


@needs_ontology
@pytest.mark.skipif(GPV_LABELS is None or not GPV_LABELS.is_file(), reason=f"GPV-F labels not at {GPV_LABELS}")
def test_mapped_labels_are_gpv_f_labels_and_ontology_only_names():
    onto = load_ontology(REAL_ONTOLOGY)
    labels = pd.read_csv(GPV_LABELS)["label"].map(label_key)
    assert len(labels) == 527 and labels.is_unique
    ontology_keys = {label_key(n) for n in onto.names}
    assert set(labels) <= ontology_keys  # one to one with 527 of the 632 ontology names
    mapped = [n for v in esc50_audioset_names().values() for n in v]
    ontology_only = [n for n in mapped if label_key(n) not in set(labels)]
    assert ontology_only == ["Bay", "Cat communication", "Wildfire", "Gull, seagull", "Howl (wind)"]


@needs_ontology
def test_mapping_is_closed_under_descendants_up_to_documented_exclusions():
    from clap_lib.data.ontology import EXCLUDED_DESCENDANTS

    onto = load_ontology(REAL_ONTOLOGY)
    mapped = {n for v in esc50_audioset_names().values() for n in v}
    below = {onto.by_id[d].name for n in mapped for d in descendants(onto, n)}
    assert below - mapped == set(EXCLUDED_DESCENDANTS)  # each excluded one is a real, unmapped descendant
    assert not set(EXCLUDED_DESCENDANTS) & mapped


def test_synonyms_cover_every_class_and_are_lower_case():
    from clap_lib.data.ontology import ESC50_SYNONYMS

    assert list(ESC50_SYNONYMS) == list(ESC50_CLASSES)
    assert all(p == p.lower().strip() and p for ps in ESC50_SYNONYMS.values() for p in ps)
