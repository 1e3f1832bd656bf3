import pytest

from fabrec.config import AETrainConfig, apply_overrides, dump_yaml, load_yaml
from fabrec.errors import FabrecError


def test_yaml_round_trip_and_overrides(tmp_path) -> None:
    cfg = apply_overrides(AETrainConfig(), ["model.width=0.5", "loss.w_cs=10", "data.paths=[a,b]"])
    assert cfg.model.width == 0.5 and cfg.loss.w_cs == 10.0 and cfg.data.paths == ("a", "b")
    p = tmp_path / "c.yaml"
    p.write_text(dump_yaml(cfg))
    assert load_yaml(AETrainConfig, p) == cfg


def test_paper_defaults() -> None:
    c = AETrainConfig()
    assert (c.loss.w_rec, c.loss.w_cs, c.loss.w_adv, c.loss.w_enc) == (0.5, 30.0, 1.0, 1.0)
    assert (c.optim.lr, c.optim.lr_dx, c.optim.beta1) == (2e-5, 1e-5, 0.0)
    assert (c.schedule.dz_every, c.schedule.enc_every, c.schedule.dx_every) == (4, 2, 2)
    assert c.model.latent_dim == 99


@pytest.mark.parametrize("bad", ["nope=1", "model.nope=1", "model.width=abc", "novalue"])
def test_bad_overrides(bad: str) -> None:
    with pytest.raises(FabrecError):
        apply_overrides(AETrainConfig(), [bad])


def test_unknown_yaml_key(tmp_path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("model:\n  colour: red\n")
    with pytest.raises(FabrecError, match="colour"):
        load_yaml(AETrainConfig, p)
