import math

import numpy as np
import pytest
import torch

from clap_lib.config.experiment import DEFAULT_TEXT_MODEL
from clap_lib.models.backbones.cnn14 import Cnn14, load_panns_checkpoint, spec_augment
from clap_lib.models.clap import Clap, Projection, TextEncoder
from clap_lib.models.loss import clip_logits, clip_loss
from clap_lib.models.text import resolve_text_model


def test_cnn14_full_width_has_the_official_layout_and_size():
    m = Cnn14(n_mels=64, width=1.0, n_classes=527)
    sd = m.state_dict()
    assert sd["bn0.weight"].shape == (64,)
    assert sd["conv_block1.conv1.weight"].shape == (64, 1, 3, 3)
    assert sd["conv_block6.conv2.weight"].shape == (2048, 2048, 3, 3)
    assert sd["fc1.weight"].shape == (2048, 2048)
    assert sd["fc_audioset.weight"].shape == (527, 2048)
    # parameters by hand: convs (no bias) 9*(c_in*c + c*c), BN 2c per BN, fc1, fc_audioset, bn0
    chans, c_in, n = (64, 128, 256, 512, 1024, 2048), 1, 0
    for c in chans:
        n += 9 * (c_in * c + c * c) + 2 * (2 * c)
        c_in = c
    n += 2048 * 2048 + 2048 + 527 * 2048 + 527 + 2 * 64
    assert sum(p.numel() for p in m.parameters()) == n == 80_753_615


def test_cnn14_forward_shapes_and_pooling():
    m = Cnn14(width=1 / 16, n_classes=10).eval()
    x = torch.randn(3, 501, 64)
    assert m(x).shape == (3, 128)
    assert m.classify(x).shape == (3, 10)
    assert (m(x) >= 0).all()  # ReLU after fc1


def test_cnn14_time_pooling_is_max_plus_mean():
    # with all convs producing a constant map, max + mean over time = 2 * value
    m = Cnn14(width=1 / 32, n_classes=2).eval()
    feats = {}
    m.fc1.register_forward_hook(lambda mod, inp, out: feats.setdefault("in", inp[0]))
    x = torch.randn(2, 101, 64)
    m(x)
    # recompute the head input by hand from the conv stack
    h = m.bn0(x.unsqueeze(1).transpose(1, 3)).transpose(1, 3)
    for i in range(1, 7):
        h = getattr(m, f"conv_block{i}")(h, pool=(2, 2) if i < 6 else (1, 1))
    h = h.mean(dim=3)
    torch.testing.assert_close(feats["in"], h.max(dim=2).values + h.mean(dim=2))


def test_spec_augment_masks_within_widths():
    x = torch.ones(4, 1, 200, 64)
    y = spec_augment(x, torch.Generator().manual_seed(0))
    zero = y == 0
    time_masked = zero.all(dim=3).squeeze(1).sum(dim=1)  # frames fully zeroed per clip
    freq_masked = zero.all(dim=2).squeeze(1).sum(dim=1)
    assert (time_masked <= 2 * 64).all() and (freq_masked <= 2 * 8).all()
    assert y.sum() < x.sum()


def _official_state(width):
    m = Cnn14(width=width, n_classes=527)
    sd = {k: v.clone() for k, v in m.state_dict().items()}
    # the official file also carries the fixed STFT/mel buffers of torchlibrosa
    sd["spectrogram_extractor.stft.conv_real.weight"] = torch.zeros(513, 1, 1024)
    sd["spectrogram_extractor.stft.conv_imag.weight"] = torch.zeros(513, 1, 1024)
    sd["logmel_extractor.melW"] = torch.zeros(513, 64)
    return m, sd


def test_load_panns_checkpoint_official_layout(tmp_path):
    src, sd = _official_state(1 / 16)
    torch.nn.init.normal_(sd["fc1.weight"])
    path = tmp_path / "Cnn14_mAP=0.431.pth"
    torch.save({"model": sd, "iteration": 1}, path)
    m = load_panns_checkpoint(path, width=1 / 16)
    torch.testing.assert_close(m.state_dict()["fc1.weight"], sd["fc1.weight"])
    torch.testing.assert_close(m.state_dict()["conv_block3.bn2.running_var"], sd["conv_block3.bn2.running_var"])


def test_load_panns_checkpoint_errors_name_the_keys(tmp_path):
    _, sd = _official_state(1 / 16)
    del sd["conv_block2.conv1.weight"]
    sd["head.extra"] = torch.zeros(1)
    path = tmp_path / "wrong.pth"
    torch.save({"model": sd}, path)
    with pytest.raises(ValueError, match=r"conv_block2\.conv1\.weight.*head\.extra"):
        load_panns_checkpoint(path, width=1 / 16)
    with pytest.raises(ValueError, match="shape mismatch"):
        _, sd = _official_state(1 / 16)
        torch.save({"model": sd}, path)
        load_panns_checkpoint(path, width=1 / 8)
    with pytest.raises(FileNotFoundError, match="zenodo"):
        load_panns_checkpoint(tmp_path / "absent.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable"):
        load_panns_checkpoint(tmp_path / "junk.pth")


def test_projection_is_residual_layernorm():
    p = Projection(8, 16, p_drop=0.5).eval()
    x = torch.randn(5, 8)
    h = p.linear1(x)
    expected = torch.nn.functional.layer_norm(
        h + p.linear2(torch.nn.functional.gelu(h)), (16,), p.layer_norm.weight, p.layer_norm.bias
    )
    torch.testing.assert_close(p(x), expected)
    torch.nn.init.zeros_(p.linear2.weight)
    torch.testing.assert_close(p(x), torch.nn.functional.layer_norm(h, (16,), p.layer_norm.weight, p.layer_norm.bias))
    assert p.linear1.bias is None and p.linear2.bias is None


def test_clip_loss_hand_computed():
    E_a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    E_t = torch.tensor([[1.0, 0.0], [math.sqrt(0.5), math.sqrt(0.5)]])
    scale = torch.tensor(math.log(10.0))
    C = 10 * E_a @ E_t.T  # [[10, 7.07], [0, 7.07]]
    s = math.sqrt(0.5) * 10
    l_a = 0.5 * (-math.log(math.exp(10) / (math.exp(10) + math.exp(s))) - math.log(math.exp(s) / (1 + math.exp(s))))
    l_t = 0.5 * (-math.log(math.exp(10) / (math.exp(10) + 1)) - math.log(math.exp(s) / (2 * math.exp(s))))
    torch.testing.assert_close(clip_logits(E_a, E_t, scale), C)
    assert clip_loss(E_a, E_t, scale).item() == pytest.approx(0.5 * (l_a + l_t), rel=1e-5)


def test_clip_logits_are_clamped():
    E = torch.nn.functional.normalize(torch.randn(6, 4), dim=1)
    C = clip_logits(E, E, torch.tensor(20.0))
    assert C.max().item() == 100.0 and C.min().item() >= -100.0


@pytest.fixture(scope="module")
def text_encoder():
    return TextEncoder(resolve_text_model(DEFAULT_TEXT_MODEL))


def test_text_encoder_cls_of_last_layer(text_encoder):
    texts = ["a dog barks", "rain falls on a tin roof"]
    tokens = text_encoder.tokenize(texts)
    x_t = text_encoder.eval()(tokens)
    assert x_t.shape == (2, 384)
    assert text_encoder.tokenizer.vocab_size == 30522
    assert (tokens["input_ids"][:, 0] == text_encoder.tokenizer.cls_token_id).all()
    with torch.no_grad():
        ref = text_encoder.bert(**tokens).last_hidden_state[:, 0]
    torch.testing.assert_close(x_t, ref)


def test_text_encoder_rejects_a_tiny_vocabulary(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]))
    (tmp_path / "tokenizer_config.json").write_text('{"tokenizer_class": "BertTokenizer"}')
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ValueError, match="vocab_size=5"):
        TextEncoder(str(tmp_path))


def test_clap_embeddings_are_unit_norm(text_encoder):
    model = Clap(Cnn14(width=1 / 16, n_classes=3), text_encoder, d_embed=32).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 101, 64), text_encoder.tokenize(["a", "b"]))
    assert out.E_a.shape == out.E_t.shape == (2, 32)
    np.testing.assert_allclose(out.E_a.norm(dim=1).numpy(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(out.E_t.norm(dim=1).numpy(), 1.0, rtol=1e-5)
    assert model.logit_scale.item() == pytest.approx(math.log(1 / 0.07))


def test_build_clap_seeds_the_projectors_by_the_config_seed(tmp_path):
    """Every profile's projectors follow cfg.seed (CNN14's random init used to reseed the global RNG with 0 just
    before the projectors were drawn, so every lab seed started from the same projectors)."""
    from dataclasses import replace

    from clap_lib.config.profiles import make_config
    from clap_lib.models import backbones
    from clap_lib.pipeline.cache import Stage
    from clap_lib.pipeline.stages import build_clap

    cfg = make_config("lab", {"width": "0.0625", "d_embed": "16"})
    bb = Stage(tmp_path, "backbone", "k")
    bb.dir.mkdir(parents=True)
    torch.save(backbones.spec("cnn14").random_init(cfg, 50, 0).state_dict(), bb.dir / "backbone.pt")
    w = {s: build_clap(replace(cfg, seed=s), bb).audio_proj.linear1.weight.detach() for s in (0, 1)}
    assert not torch.equal(w[0], w[1])
    torch.testing.assert_close(build_clap(replace(cfg, seed=1), bb).audio_proj.linear1.weight.detach(), w[1])
