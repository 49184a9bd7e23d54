"""Preprocessed-image cache (content + recipe keyed, unreadable files listed) and batch augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from xrayviewer.engine.preprocess import PreprocessRecipe, preprocess
from xrayviewer.imaging import open_image
from xrayviewer.training.augment import augment_batch
from xrayviewer.training.cache import preload, recipe_key
from xrayviewer.training.config import AugmentConfig


def test_cache_matches_preprocess_is_content_keyed_and_skips_unreadable(tmp_path, kermany_rows):
    paths = [tmp_path / "a.jpeg", tmp_path / "broken.png", tmp_path / "same-as-a.jpeg", tmp_path / "b.jpeg"]
    real = [row["path"] for row in kermany_rows[:2]]
    paths[0].write_bytes(Path(real[0]).read_bytes())
    paths[1].write_bytes(b"\x89PNG\r\n\x1a\n not really")
    paths[2].write_bytes(paths[0].read_bytes())
    paths[3].write_bytes(Path(real[1]).read_bytes())
    recipe = PreprocessRecipe(size=64)
    first = preload(paths, recipe, tmp_path / "cache", workers=0)
    assert first.kept == [0, 2, 3]
    assert [p for p, _ in first.unreadable] == [str(paths[1])]
    expected, _ = preprocess(open_image(paths[0]), recipe)
    np.testing.assert_allclose(first.images[0].float().numpy(), expected, atol=1.0)  # float16 storage
    entries = list((tmp_path / "cache" / recipe_key(recipe)).glob("*.npy"))
    assert len(entries) == 2  # two distinct contents among three readable files
    paths[3].write_bytes(b"")  # a hit is keyed by content: an emptied file is not served from the cache
    second = preload(paths, recipe, tmp_path / "cache", workers=0)
    assert second.kept == [0, 2]
    assert torch.equal(second.images[0], first.images[0])
    assert recipe_key(PreprocessRecipe(size=64, equalize="clahe")) != recipe_key(recipe)


def test_augmentation_is_seeded_and_identity_when_switched_off():
    x = torch.linspace(-1024, 1024, 2 * 32 * 32).reshape(2, 1, 32, 32)
    config = AugmentConfig()
    a = augment_batch(x, config, torch.Generator().manual_seed(1))
    b = augment_batch(x, config, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.allclose(a, x)
    assert a.min() >= -1024 and a.max() <= 1024
    off = AugmentConfig(
        rotation_deg=0, crop_scale=(1, 1), crop_ratio=(1, 1), shift=0, brightness=0, contrast=0
    )
    assert torch.allclose(augment_batch(x, off, torch.Generator()), x, atol=1e-2)
    flipped = augment_batch(
        x, AugmentConfig(**{**off.__dict__, "hflip": True}), torch.Generator().manual_seed(0)
    )
    flips = [torch.allclose(flipped[i], x[i].flip(-1), atol=1e-2) for i in range(2)]
    keeps = [torch.allclose(flipped[i], x[i], atol=1e-2) for i in range(2)]
    assert all(f or k for f, k in zip(flips, keeps, strict=True))


def test_rotation_turns_a_bar_without_washing_it_out():
    x = torch.full((1, 1, 33, 33), -1024.0)
    x[..., 0:8, 12:21] = 1024.0  # a bar at the top centre
    config = AugmentConfig(
        rotation_deg=10.0, crop_scale=(1, 1), crop_ratio=(1, 1), shift=0, brightness=0, contrast=0
    )
    out = augment_batch(x, config, torch.Generator().manual_seed(3))
    assert not torch.allclose(out, x, atol=1.0)
    assert float(out.mean()) == pytest.approx(float(x.mean()), rel=0.1)  # rotated, not washed out


def test_degrade_blurs_the_chosen_share_of_images_to_the_drawn_resolution():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.uniform(-1024, 1024, (64, 1, 32, 32)).astype(np.float32))  # pixel noise
    off = AugmentConfig(rotation_deg=0, crop_scale=(1, 1), crop_ratio=(1, 1), shift=0, brightness=0,
                        contrast=0)
    blur = AugmentConfig(**{**off.__dict__, "degrade": 0.5, "degrade_size": (8.0, 8.0)})
    out = augment_batch(x, blur, torch.Generator().manual_seed(2))
    # noise keeps its pixel-to-pixel jumps; an image blurred to 8×8 px loses them
    jumps = (out[:, 0, :, 1:] - out[:, 0, :, :-1]).abs().mean(dim=(1, 2))
    blurred = jumps < 0.5 * (x[:, 0, :, 1:] - x[:, 0, :, :-1]).abs().mean(dim=(1, 2))
    assert 20 <= int(blurred.sum()) <= 44
    assert torch.allclose(out[~blurred], x[~blurred], atol=1e-2)
    assert torch.equal(out, augment_batch(x, blur, torch.Generator().manual_seed(2)))
