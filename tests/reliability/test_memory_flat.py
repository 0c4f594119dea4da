"""Long runs keep memory flat: RSS slopes over short loops of training, gallery scrolling, XRD identifying.

Each test runs its loop, samples RSS after every step (rss_slope.py: garbage collected and free heap
pages given back first, so a leak shows at once instead of hiding in freed memory), drops a warm-up and
checks the least-squares slope against a bound well below what a leak of one step's data gives. The
long runs (200 epochs, 100 000 rows, 1 000 identifications) and their figures are in
``bench/bench_long_runs.py``. No timing is asserted.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from rss_slope import RssSeries, rss_bytes, slope

KIB = 1024


@pytest.fixture
def series() -> Iterator[list[RssSeries]]:
    """Series made by a test; the warm-up's ``gc.freeze`` is undone afterwards even when it fails."""
    made: list[RssSeries] = []
    yield made
    for item in made:
        item.close()


# -- the instrument can fail ---------------------------------------------------------------------------
_LEAKED: list[bytearray] = []


def test_the_rss_slope_sees_a_deliberate_leak_and_not_a_loop_that_frees(series: list[RssSeries]) -> None:
    assert slope([5, 7, 9, 11]) == pytest.approx(2.0)
    assert rss_bytes() > 10 * 2**20
    leaking, freeing = RssSeries(warmup=3), RssSeries(warmup=3)
    series += [leaking, freeing]
    for _ in range(23):
        _LEAKED.append(bytearray(b"x" * (64 * KIB)))  # what a step's data kept in a module list does
        leaking.record()
    _LEAKED.clear()
    leaking.close()
    for _ in range(23):
        scratch = [bytearray(b"x" * (64 * KIB)) for _ in range(8)]
        del scratch
        freeing.record()
    assert leaking.slope() > 48 * KIB, leaking.describe()
    assert abs(freeing.slope()) < 16 * KIB, freeing.describe()


# -- (a) features training: many epochs of a small head on cached features -------------------------------
def test_features_training_epochs_keep_memory_flat(tmp_path: Path, series: list[RssSeries]) -> None:
    import torch

    from labeltune.core.image_task import TensorBatches
    from labeltune.core.train_callbacks import Checkpoints, History, ProgressBar
    from labeltune.core.trainer import Callback, Trainer

    torch.manual_seed(0)
    classes, dim, n_train, n_val = 4, 512, 256, 64
    centres = torch.randn(classes, dim) * 2
    labels = torch.arange(n_train + n_val) % classes
    features = (centres[labels] + torch.randn(n_train + n_val, dim)).half()  # cached features are fp16

    def to_float(x: torch.Tensor, _train: bool) -> torch.Tensor:
        return x.float()

    device = torch.device("cpu")
    train = TensorBatches(features[:n_train], labels[:n_train], 32, device, True, 0, to_float)
    val = TensorBatches(features[n_train:], labels[n_train:], 64, device, transform=to_float)
    head = torch.nn.Linear(dim, classes)
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=1e-4)
    warmup, measured = 20, 100
    epochs = warmup + measured
    rss = RssSeries(warmup=warmup)
    series.append(rss)

    class Sample(Callback):
        def on_epoch_end(self, trainer: Trainer, record: Any) -> None:
            rss.record()

    trainer = Trainer(
        head,
        optimizer,
        torch.nn.CrossEntropyLoss(),
        train,
        val,
        epochs,
        classes,
        scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs),
        callbacks=[
            ProgressBar(lambda _p: None, epochs),
            History(tmp_path),
            Checkpoints(tmp_path, interval=0.0),  # a checkpoint after every epoch: torch.save in the loop
            Sample(),
        ],
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the app trains a linear head on a CPU
    try:
        state = trainer.fit()
    finally:
        torch.set_num_threads(threads)
    assert state.epoch == epochs and len(rss.samples) == epochs
    assert state.history[-1].val_accuracy > 0.9  # it trained, it did not only loop
    assert (tmp_path / "checkpoint.pt").is_file()
    # one epoch's features are 256 KiB (fp16): keeping a batch (16 KiB) per epoch would pass the bound
    assert rss.slope() < 8 * KIB, rss.describe()


# -- (b) the gallery: a 20 000-row model scrolled page by page --------------------------------------------
def test_gallery_scroll_keeps_memory_flat_and_the_thumbnails_bounded(
    qtbot: Any, tmp_path: Path, series: list[RssSeries]
) -> None:
    from PIL import Image
    from PySide6.QtGui import QImage

    from labeltune.core.datasets import Sample
    from labeltune.core.project import Project
    from labeltune.core.thumbnails import Thumbnail, ThumbnailCache
    from labeltune.ui.gallery import GalleryView
    from labeltune.ui.gallery_model import THUMBNAIL_STATE_ROLE, GalleryModel
    from labeltune.ui.thumbnails import ThumbnailLoader, _Runner

    class GeneratedThumbnails(ThumbnailCache):
        """Serves a made-up thumbnail for any path: 20 000 image files are not needed to scroll."""

        def load(self, image_path: object) -> Thumbnail:  # type: ignore[override]
            shade = hash(str(image_path)) % 200
            return Thumbnail(Image.new("RGB", (48, 36), (shade, 80, 200 - shade)), cached=True)

    rows = 20_000
    classes = ["a", "b", "c"]
    project = Project.create(tmp_path / "proj", classes=classes)
    project.add_samples(
        Sample(tmp_path / "images" / f"img{i:05d}.jpg", None if i % 3 else classes[i % 9 // 3])
        for i in range(rows)
    )
    loader = ThumbnailLoader(GeneratedThumbnails(tmp_path / "cache", 48), threads=2, display_size=48)
    budget_mb = 1
    model = GalleryModel(loader, image_budget_mb=budget_mb)
    view = GalleryView(48)
    qtbot.addWidget(view)
    view.setModel(model)
    view.resize(640, 480)
    view.show()
    model.set_project(project)
    assert model.rowCount() == rows
    bar = view.verticalScrollBar()
    one_image = 48 * 48 * 4  # enlarged to the grid size, 32 bits a pixel

    def screen_ready() -> bool:  # every row painted on screen has its thumbnail
        first, last = view.visible_rows()
        area = view.viewport().rect()
        shown = [
            r
            for r in range(max(0, first), min(rows, last + 1))
            if view.visualRect(model.index(r)).intersects(area)
        ]
        return bool(shown) and all(model.index(r).data(THUMBNAIL_STATE_ROLE) == "ready" for r in shown)

    warmup, measured = 15, 90
    rss = RssSeries(warmup=warmup)
    series.append(rss)
    held: list[int] = []
    try:
        for _page in range(warmup + measured):
            bar.setValue(bar.value() + bar.pageStep())
            view.viewport().repaint()  # paint: asks for this page's thumbnails
            qtbot.waitUntil(screen_ready, timeout=30_000)
            view.viewport().repaint()  # and paints them
            held.append(model.thumbnail_bytes())
            assert model.thumbnail_bytes() <= budget_mb * 2**20
            assert loader.pending_count() <= 200  # rows scrolled away do not pile up requests
            rss.record()
        first, _last = view.visible_rows()
        assert first > 0.2 * rows  # it really went far down the list
        assert isinstance(model.index(first + 10).data(1), QImage)
        assert max(held) > budget_mb * 2**20 - 2 * one_image  # the budget filled, then stayed bounded
        # a page's thumbnails are ~450 KiB; PySide keeping each started runner cost ~15 KiB a page
        assert rss.slope() < 4 * KIB, rss.describe()
        rss.close()  # gc.get_objects() does not list what the warm-up froze
        # (a runner left by another test's loader may have lost its attributes with its C++ object)
        ours = [
            o for o in gc.get_objects() if type(o) is _Runner and getattr(o, "_queue", None) is loader._queue
        ]
        assert 1 <= len(ours) <= 2  # one per thread, reused
    finally:
        loader.shutdown()
        project.close()


# -- (c) the same XRD pattern identified again and again --------------------------------------------------
def test_repeated_xrd_identifications_keep_memory_flat(series: list[RssSeries]) -> None:
    """The network's identification, 120 times (the refining fit takes seconds each: the benchmark's)."""
    import torch

    from labeltune.core.xrd.inference import XrdModel
    from labeltune.core.xrd.readers import read_pattern
    from labeltune.core.xrd.shipped import shipped_model_dir

    run = shipped_model_dir()
    if run is None:
        pytest.skip("the shipped XRD model is not in models/")
    demo = Path(str(files("labeltune") / "resources" / "demos" / "xrd" / "patterns"))
    pattern = read_pattern(demo / "TiO2.xy", 1.5406)
    model = XrdModel(run)

    network = RssSeries(warmup=5)  # the network's answer with its class activation maps
    series.append(network)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a busy machine's second intra-op thread only adds waiting
    try:
        for _ in range(5 + 25):
            for _ in range(4):
                answer = model.predict(pattern, fit=False, activation=True)
            network.record()
    finally:
        torch.set_num_threads(threads)
    assert "TiO2" in {call.formula for call in answer.phases}
    assert set(answer.activation) >= {call.name for call in answer.phases}
    # one identification's input is 18 KiB on the grid: kept each time, that is 72 KiB a step
    assert network.slope() < 16 * KIB, network.describe()
